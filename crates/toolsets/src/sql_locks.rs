//! Refuses SQL that would take locks through a read tool (pg_query, cnpg_query, ch_query).
//!
//! A READ ONLY transaction still lets PostgreSQL run `LOCK TABLE t IN ACCESS EXCLUSIVE MODE`,
//! session-level advisory locks (which outlive the transaction on a pooled connection) and `DO`
//! blocks (which can run LOCK). A queued exclusive lock blocks every later reader of the table,
//! so a model's read must not be able to ask for one. The backend stays the first guard — every
//! read transaction also sets a short `lock_timeout`, and PostgreSQL itself refuses
//! `SELECT ... FOR UPDATE/SHARE` in a READ ONLY transaction — and this check gives the clear,
//! early refusal.
//!
//! The check reads the statement's words the way the server's lexer would: comments, string
//! literals (standard, `E'...'`, dollar-quoted) and quoted identifiers are not words, so
//! `select 'lock'` or `-- for update` pass, while `SELECT "pg_advisory_lock"(1)` does not.

/// The SQL dialect, for the few lexical rules that differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Dialect {
    /// PostgreSQL: dollar quoting; backslashes escape only in `E'...'` strings.
    Postgres,
    /// ClickHouse: backslash escapes in strings, backtick identifiers.
    Clickhouse,
}

/// Why `sql` may not run through a read tool, or `None` when it takes no lock a read tool
/// refuses.
pub(crate) fn refusal(sql: &str, dialect: Dialect) -> Option<String> {
    let words = words(sql, dialect);
    let keyword = |i: usize| words.get(i).filter(|w| !w.quoted).map(|w| w.text.as_str());
    let refuse = |what: &str, why: &str| {
        Some(format!(
            "this read tool refuses {what}: reads never take locks ({why}). Read with a plain \
             SELECT instead; statements that lock or change data need the link's execute tool, \
             served only with writeAccess"
        ))
    };
    match keyword(0) {
        Some("lock") => {
            return refuse(
                "LOCK",
                "a table lock, even a queued one, blocks the other sessions using the table",
            );
        }
        Some("do") if dialect == Dialect::Postgres => {
            return refuse(
                "DO blocks",
                "procedural code can take table and advisory locks",
            );
        }
        _ => {}
    }
    for (i, word) in words.iter().enumerate() {
        if keyword(i) == Some("for") {
            let clause = match (keyword(i + 1), keyword(i + 2), keyword(i + 3)) {
                (Some("update"), ..) => Some("FOR UPDATE"),
                (Some("share"), ..) => Some("FOR SHARE"),
                (Some("no"), Some("key"), Some("update")) => Some("FOR NO KEY UPDATE"),
                (Some("key"), Some("share"), _) => Some("FOR KEY SHARE"),
                _ => None,
            };
            if let Some(clause) = clause {
                return refuse(
                    &format!("SELECT ... {clause}"),
                    "row locks block the writers of those rows",
                );
            }
        }
        if is_advisory_lock(&word.text) {
            return refuse(
                &format!("{}()", word.text),
                "an advisory lock can outlive the call on a pooled connection and block other \
                 sessions",
            );
        }
    }
    None
}

/// `pg_advisory_lock`, `pg_try_advisory_xact_lock_shared` and the rest of that family (the
/// unlock functions release, so they are not in it).
fn is_advisory_lock(word: &str) -> bool {
    let Some(rest) = word
        .strip_prefix("pg_try_advisory_")
        .or_else(|| word.strip_prefix("pg_advisory_"))
    else {
        return false;
    };
    let rest = rest.strip_prefix("xact_").unwrap_or(rest);
    matches!(rest, "lock" | "lock_shared")
}

/// One word of a statement: an identifier or keyword, lowercased.
#[derive(Debug, PartialEq, Eq)]
struct Word {
    text: String,
    /// Written in quotes (`"x"`, `` `x` ``): an identifier, never a keyword.
    quoted: bool,
}

/// The words of `sql`, skipping whitespace, comments, literals and punctuation.
fn words(sql: &str, dialect: Dialect) -> Vec<Word> {
    let chars: Vec<char> = sql.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        match c {
            '-' if next == Some('-') => {
                while i < chars.len() && chars[i] != '\n' {
                    i += 1;
                }
            }
            '/' if next == Some('*') => {
                // Block comments nest in PostgreSQL.
                let mut depth = 0;
                while i < chars.len() {
                    if chars[i] == '/' && chars.get(i + 1) == Some(&'*') {
                        depth += 1;
                        i += 2;
                    } else if chars[i] == '*' && chars.get(i + 1) == Some(&'/') {
                        depth -= 1;
                        i += 2;
                        if depth == 0 {
                            break;
                        }
                    } else {
                        i += 1;
                    }
                }
            }
            '\'' => i = skip_quoted(&chars, i, '\'', dialect == Dialect::Clickhouse),
            '"' | '`' => {
                let end = skip_quoted(&chars, i, c, dialect == Dialect::Clickhouse);
                let inner: String = chars[i + 1..end.saturating_sub(1).max(i + 1)]
                    .iter()
                    .collect();
                out.push(Word {
                    text: inner.replace(&format!("{c}{c}"), &c.to_string()),
                    quoted: true,
                });
                i = end;
            }
            '$' if dialect == Dialect::Postgres => i = skip_dollar(&chars, i),
            c if c.is_alphabetic() || c == '_' => {
                let start = i;
                while i < chars.len()
                    && (chars[i].is_alphanumeric() || matches!(chars[i], '_' | '$'))
                {
                    i += 1;
                }
                let text: String = chars[start..i].iter().collect::<String>().to_lowercase();
                // E'...' (and U&'...', B'...', X'...') prefix a string literal.
                if i < chars.len() && chars[i] == '\'' && text.len() == 1 {
                    i = skip_quoted(&chars, i, '\'', text == "e");
                } else {
                    out.push(Word {
                        text,
                        quoted: false,
                    });
                }
            }
            _ => i += 1,
        }
    }
    out
}

/// The index after the literal or quoted identifier opened by `quote` at `start`; a doubled
/// quote stands for one, and with `backslash` a backslash escapes the next character.
fn skip_quoted(chars: &[char], start: usize, quote: char, backslash: bool) -> usize {
    let mut i = start + 1;
    while i < chars.len() {
        if backslash && chars[i] == '\\' {
            i += 2;
        } else if chars[i] == quote {
            if chars.get(i + 1) == Some(&quote) {
                i += 2;
            } else {
                return i + 1;
            }
        } else {
            i += 1;
        }
    }
    chars.len()
}

/// The index after a dollar-quoted string (`$$...$$`, `$tag$...$tag$`) opened at `start`, or
/// after the `$` when it opens none (a parameter like `$1`).
fn skip_dollar(chars: &[char], start: usize) -> usize {
    let mut i = start + 1;
    while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
        i += 1;
    }
    let tag_is_valid = chars.get(start + 1).is_none_or(|c| !c.is_ascii_digit());
    if i >= chars.len() || chars[i] != '$' || !tag_is_valid {
        return start + 1;
    }
    let tag = &chars[start..=i];
    let mut j = i + 1;
    while j + tag.len() <= chars.len() {
        if &chars[j..j + tag.len()] == tag {
            return j + tag.len();
        }
        j += 1;
    }
    chars.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(sql: &str) -> bool {
        refusal(sql, Dialect::Postgres).is_some()
    }

    #[test]
    fn lock_statements_are_refused() {
        for sql in [
            "LOCK TABLE t IN ACCESS EXCLUSIVE MODE",
            "  lock t",
            "/* first */ LOCK TABLE ONLY t IN SHARE MODE NOWAIT",
            "-- why\nlock table t",
            "DO $$ BEGIN LOCK TABLE t IN ACCESS EXCLUSIVE MODE; END $$",
            "do language plpgsql 'begin perform 1; end'",
        ] {
            assert!(refused(sql), "{sql}");
        }
        let message = refusal("lock t", Dialect::Postgres).unwrap_or_default();
        assert!(message.contains("refuses LOCK"), "{message}");
        assert!(message.contains("execute tool"), "{message}");
    }

    #[test]
    fn row_locking_clauses_are_refused_anywhere() {
        for sql in [
            "SELECT * FROM t FOR UPDATE",
            "select * from t for share of t nowait",
            "select * from t for no key update skip locked",
            "select * from t for key share",
            "with x as (select * from t for update) select * from x",
            "select * from (select * from t for share) s",
        ] {
            assert!(refused(sql), "{sql}");
        }
    }

    #[test]
    fn advisory_locks_are_refused_but_unlocks_pass() {
        for sql in [
            "select pg_advisory_lock(1)",
            "SELECT pg_try_advisory_lock_shared(1, 2)",
            "select pg_advisory_xact_lock(42)",
            "select \"pg_advisory_lock\"(7)",
            "select pg_catalog.pg_try_advisory_xact_lock(1)",
        ] {
            assert!(refused(sql), "{sql}");
        }
        assert!(!refused("select pg_advisory_unlock_all()"));
    }

    #[test]
    fn words_inside_literals_comments_and_identifiers_do_not_count() {
        for sql in [
            "select 'lock table t' as x",
            "select E'it\\'s for update' as x",
            "select $$ for update $$, $tag$ lock $tag$",
            "select 1 -- for update",
            "select 1 /* nested /* for update */ lock */",
            "select \"for\" from t",
            "select * from locks where kind = 'advisory'",
            "select * from t where a = $1 for_update_flag",
            "select for_update, lock_count from t",
            "SELECT format('%s', 'pg_advisory_lock')",
            "explain select * from t",
        ] {
            assert!(!refused(sql), "{sql}");
        }
    }

    #[test]
    fn clickhouse_strings_use_backslash_escapes() {
        let ch = |sql| refusal(sql, Dialect::Clickhouse);
        assert!(ch("SELECT 'it\\'s' AS x FROM t").is_none());
        assert!(ch("LOCK TABLE t").is_some());
        assert!(ch("select `for` from t").is_none());
        // DO is PostgreSQL's; ClickHouse has no such statement to refuse.
        assert!(ch("do something").is_none());
    }
}
