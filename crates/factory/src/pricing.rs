//! What a run cost, in USD, from a built-in price table per model or the Agent's override.
//!
//! Prices are list prices per million tokens (Anthropic and OpenAI pricing pages, checked in
//! 2026): batch, cache and regional discounts are not modelled, so the figure is an upper
//! estimate for cached prompts. A model missing from the table costs 0 and the run says so;
//! an Agent's `spec.pricing` overrides the table for negotiated prices or other models.

use linkmcp_api::agent::Pricing;

use crate::provider::Usage;

/// USD per million input and output tokens of the models the table knows, by base name (the
/// dated snapshot `claude-haiku-4-5-20251001` and the alias `claude-haiku-4-5` are one entry).
pub const PRICES: &[(&str, f64, f64)] = &[
    // Anthropic
    ("claude-haiku-4-5", 1.0, 5.0),
    ("claude-sonnet-4-6", 3.0, 15.0),
    ("claude-sonnet-4-5", 3.0, 15.0),
    ("claude-sonnet-4-0", 3.0, 15.0),
    ("claude-sonnet-4", 3.0, 15.0),
    // Opus 4.5 and later were cut to $5/$25; Opus 4 and 4.1 stay at $15/$75.
    ("claude-opus-4-6", 5.0, 25.0),
    ("claude-opus-4-5", 5.0, 25.0),
    ("claude-opus-4-1", 15.0, 75.0),
    ("claude-opus-4-0", 15.0, 75.0),
    ("claude-opus-4", 15.0, 75.0),
    ("claude-3-7-sonnet", 3.0, 15.0),
    ("claude-3-5-haiku", 0.8, 4.0),
    ("claude-3-haiku", 0.25, 1.25),
    // OpenAI
    ("gpt-5", 1.25, 10.0),
    ("gpt-5-mini", 0.25, 2.0),
    ("gpt-5-nano", 0.05, 0.4),
    ("gpt-4.1", 2.0, 8.0),
    ("gpt-4.1-mini", 0.4, 1.6),
    ("gpt-4.1-nano", 0.1, 0.4),
    ("gpt-4o", 2.5, 10.0),
    ("gpt-4o-mini", 0.15, 0.6),
    ("o3", 2.0, 8.0),
    ("o4-mini", 1.1, 4.4),
];

/// Where a cost figure came from.
#[derive(Debug, Clone, PartialEq)]
pub enum PriceSource {
    /// The built-in table, under this entry.
    Table(&'static str),
    /// The Agent's `spec.pricing`.
    Override,
    /// No price known: the cost is reported as 0.
    Unknown,
}

/// The cost of some usage.
#[derive(Debug, Clone, PartialEq)]
pub struct Cost {
    /// USD.
    pub usd: f64,
    /// Where the price came from.
    pub source: PriceSource,
}

impl Cost {
    /// A sentence for the run's report when the price is unknown.
    pub fn note(&self, model: &str) -> Option<String> {
        match self.source {
            PriceSource::Unknown => Some(format!(
                "no price is known for model `{model}`, so its cost is counted as $0; set \
                 spec.pricing on the Agent to count it"
            )),
            _ => None,
        }
    }
}

/// The cost of `usage` with `model`, the Agent's `pricing` winning over the table.
pub fn cost(model: &str, pricing: Option<&Pricing>, usage: Usage) -> Cost {
    let (input, output, source) = match (pricing, price_of(model)) {
        (Some(p), _) => (
            p.input_per_million,
            p.output_per_million,
            PriceSource::Override,
        ),
        (None, Some((entry, input, output))) => (input, output, PriceSource::Table(entry)),
        (None, None) => (0.0, 0.0, PriceSource::Unknown),
    };
    let usd = (usage.input_tokens as f64 * input + usage.output_tokens as f64 * output) / 1e6;
    Cost { usd, source }
}

/// The table entry and prices for `model`: its name lowercased, without a provider prefix
/// (`openai/gpt-4o`), a date suffix (`-20251001`, `-2024-08-06`) or `-latest`.
pub fn price_of(model: &str) -> Option<(&'static str, f64, f64)> {
    let lower = model.trim().to_ascii_lowercase();
    let base = lower.rsplit('/').next().unwrap_or(&lower);
    let base = strip_version_suffix(base);
    PRICES
        .iter()
        .find(|(name, _, _)| *name == base)
        .map(|(name, input, output)| (*name, *input, *output))
}

fn strip_version_suffix(name: &str) -> &str {
    if let Some(rest) = name.strip_suffix("-latest") {
        return rest;
    }
    // -YYYYMMDD
    if let Some((rest, date)) = name.rsplit_once('-')
        && date.len() == 8
        && date.bytes().all(|b| b.is_ascii_digit())
    {
        return rest;
    }
    // -YYYY-MM-DD
    let cut = name.len().saturating_sub(11);
    if let (Some(rest), Some(date)) = (name.get(..cut), name.get(cut..))
        && !rest.is_empty()
        && date.len() == 11
    {
        let bytes = date.as_bytes();
        let shape = bytes[0] == b'-'
            && bytes[5] == b'-'
            && bytes[8] == b'-'
            && [1, 2, 3, 4, 6, 7, 9, 10]
                .iter()
                .all(|&i| bytes[i].is_ascii_digit());
        if shape {
            return rest;
        }
    }
    name
}

/// A USD amount as status shows it: `$0.0123`.
pub fn format_usd(usd: f64) -> String {
    format!("${usd:.4}")
}

/// Reads back an amount written by [`format_usd`].
pub fn parse_usd(text: &str) -> Option<f64> {
    text.trim()
        .strip_prefix('$')
        .and_then(|n| n.parse().ok())
        .filter(|v: &f64| v.is_finite() && *v >= 0.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn usage(input: u64, output: u64) -> Usage {
        Usage {
            input_tokens: input,
            output_tokens: output,
        }
    }

    #[test]
    fn dated_snapshots_aliases_and_prefixes_find_their_price() {
        assert_eq!(
            price_of("claude-haiku-4-5-20251001"),
            Some(("claude-haiku-4-5", 1.0, 5.0))
        );
        assert_eq!(
            price_of("claude-haiku-4-5"),
            Some(("claude-haiku-4-5", 1.0, 5.0))
        );
        assert_eq!(
            price_of("claude-sonnet-4-20250514").map(|p| p.0),
            Some("claude-sonnet-4")
        );
        assert_eq!(
            price_of("claude-opus-4-1-20250805").map(|p| p.1),
            Some(15.0)
        );
        assert_eq!(price_of("claude-opus-4-5-20251101").map(|p| p.1), Some(5.0));
        assert_eq!(price_of("gpt-4o-2024-08-06").map(|p| p.0), Some("gpt-4o"));
        assert_eq!(
            price_of("openai/gpt-4o-mini").map(|p| p.0),
            Some("gpt-4o-mini")
        );
        assert_eq!(price_of("GPT-4.1-mini").map(|p| p.0), Some("gpt-4.1-mini"));
        assert_eq!(
            price_of("claude-3-5-haiku-latest").map(|p| p.0),
            Some("claude-3-5-haiku")
        );
    }

    #[test]
    fn a_different_model_is_not_priced_by_a_prefix_of_its_name() {
        assert_eq!(price_of("gpt-5.4"), None);
        assert_eq!(price_of("claude-opus-4-9"), None);
        assert_eq!(price_of("llama3.1:8b"), None);
    }

    #[test]
    fn cost_uses_the_table_the_override_or_nothing() {
        let c = cost("claude-haiku-4-5-20251001", None, usage(1_000_000, 200_000));
        assert!((c.usd - 2.0).abs() < 1e-9, "{c:?}");
        assert_eq!(c.source, PriceSource::Table("claude-haiku-4-5"));
        assert_eq!(c.note("claude-haiku-4-5"), None);

        let sonnet = cost("claude-sonnet-4-5", None, usage(10_000, 1_000));
        assert!((sonnet.usd - 0.045).abs() < 1e-9, "{sonnet:?}");

        let pricing = Pricing {
            input_per_million: 0.5,
            output_per_million: 1.5,
        };
        let c = cost(
            "claude-haiku-4-5",
            Some(&pricing),
            usage(2_000_000, 1_000_000),
        );
        assert!((c.usd - 2.5).abs() < 1e-9);
        assert_eq!(c.source, PriceSource::Override);

        let c = cost("llama3.1:8b", None, usage(5_000, 5_000));
        assert_eq!(c.usd, 0.0);
        assert_eq!(c.source, PriceSource::Unknown);
        assert!(
            c.note("llama3.1:8b")
                .is_some_and(|n| n.contains("spec.pricing"))
        );
    }

    #[test]
    fn usd_amounts_round_trip_through_status_text() {
        assert_eq!(format_usd(0.012345), "$0.0123");
        assert_eq!(format_usd(0.0), "$0.0000");
        assert_eq!(parse_usd("$0.0123"), Some(0.0123));
        assert_eq!(parse_usd("0.5"), None);
        assert_eq!(parse_usd("$-1"), None);
    }
}
