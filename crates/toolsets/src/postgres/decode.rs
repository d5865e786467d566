//! PostgreSQL values, as the binary protocol carries them, turned into JSON a model can read.
//!
//! sqlx receives every result column in PostgreSQL's binary format. Decoding the common types
//! here, rather than through sqlx's optional chrono/uuid/decimal features, keeps the dependency
//! tree lean and gives one rendering for every result: integers and floats as numbers, numeric
//! as an exact string, dates and timestamps as RFC 3339, uuid, inet and macaddr in their usual
//! text, bytea as `\x` hex (PostgreSQL's own text form), json/jsonb as JSON, enums as their
//! label and arrays as nested arrays. A type without a [`Decoder`] is asked of PostgreSQL as
//! text instead (the cast fallback of the query module).

use std::fmt::Write as _;
use std::net::{Ipv4Addr, Ipv6Addr};

use serde_json::Value;
use sqlx::TypeInfo as _;
use sqlx::postgres::{PgTypeInfo, PgTypeKind};

/// How one column's binary values become JSON.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Decoder {
    Bool,
    Int2,
    Int4,
    Int8,
    /// Unsigned 32-bit: `oid`.
    Oid,
    Float4,
    Float8,
    Numeric,
    /// UTF-8 text: text, varchar, bpchar, name, enum labels, values cast to text.
    Text,
    /// The one-byte `"char"` type.
    Char,
    Json,
    Jsonb,
    Bytea,
    Uuid,
    Date,
    Time,
    TimeTz,
    Timestamp,
    TimestampTz,
    Interval,
    Inet,
    MacAddr,
    Array(Box<Decoder>),
}

/// A value that does not have the binary layout of its declared type.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed {0} value")]
pub(crate) struct Malformed(&'static str);

impl Decoder {
    /// The decoder for a column of type `ty`, or `None` for a type asked of PostgreSQL as text.
    pub(crate) fn for_type(ty: &PgTypeInfo) -> Option<Decoder> {
        if let Some(decoder) = ty.oid().and_then(|oid| Self::builtin(oid.0)) {
            return Some(decoder);
        }
        // A type sqlx could not resolve is named "?"; asking for its kind would panic.
        if ty.name() == "?" {
            return None;
        }
        match ty.kind() {
            PgTypeKind::Enum(_) => Some(Decoder::Text),
            PgTypeKind::Domain(base) => Self::for_type(base),
            PgTypeKind::Array(element) => {
                Self::for_type(element).map(|d| Decoder::Array(Box::new(d)))
            }
            _ => None,
        }
    }

    /// Built-in types by OID (pg_type.dat), arrays included.
    fn builtin(oid: u32) -> Option<Decoder> {
        use Decoder::*;
        let array = |d: Decoder| Array(Box::new(d));
        Some(match oid {
            16 => Bool,
            17 => Bytea,
            18 => Char,
            19 | 25 | 705 | 1042 | 1043 => Text,
            20 => Int8,
            21 => Int2,
            23 => Int4,
            26 => Oid,
            114 => Json,
            3802 => Jsonb,
            700 => Float4,
            701 => Float8,
            1700 => Numeric,
            2950 => Uuid,
            1082 => Date,
            1083 => Time,
            1266 => TimeTz,
            1114 => Timestamp,
            1184 => TimestampTz,
            1186 => Interval,
            650 | 869 => Inet,
            829 => MacAddr,
            1000 => array(Bool),
            1001 => array(Bytea),
            1002 => array(Char),
            1003 | 1009 | 1014 | 1015 => array(Text),
            1005 => array(Int2),
            1007 => array(Int4),
            1016 => array(Int8),
            1028 => array(Oid),
            199 => array(Json),
            3807 => array(Jsonb),
            1021 => array(Float4),
            1022 => array(Float8),
            1231 => array(Numeric),
            2951 => array(Uuid),
            1182 => array(Date),
            1183 => array(Time),
            1270 => array(TimeTz),
            1115 => array(Timestamp),
            1185 => array(TimestampTz),
            1187 => array(Interval),
            651 | 1041 => array(Inet),
            1040 => array(MacAddr),
            _ => return None,
        })
    }

    /// Decodes one non-null binary value.
    pub(crate) fn decode(&self, bytes: &[u8]) -> Result<Value, Malformed> {
        use Decoder::*;
        Ok(match self {
            Bool => Value::Bool(*fixed::<1>(bytes, "bool")? != [0]),
            Int2 => Value::from(i16::from_be_bytes(*fixed(bytes, "int2")?)),
            Int4 => Value::from(i32::from_be_bytes(*fixed(bytes, "int4")?)),
            Int8 => Value::from(i64::from_be_bytes(*fixed(bytes, "int8")?)),
            Oid => Value::from(u32::from_be_bytes(*fixed(bytes, "oid")?)),
            Float4 => float(f64::from(f32::from_be_bytes(*fixed(bytes, "float4")?))),
            Float8 => float(f64::from_be_bytes(*fixed(bytes, "float8")?)),
            Numeric => Value::String(numeric(bytes)?),
            Text | Char => Value::String(String::from_utf8_lossy(bytes).into_owned()),
            Json => json(bytes),
            Jsonb => match bytes.split_first() {
                Some((1, text)) => json(text),
                _ => return Err(Malformed("jsonb")),
            },
            Bytea => Value::String(bytea_hex(bytes, usize::MAX)),
            Uuid => Value::String(uuid(*fixed(bytes, "uuid")?)),
            Date => Value::String(date(i32::from_be_bytes(*fixed(bytes, "date")?))),
            Time => Value::String(time_of_day(i64::from_be_bytes(*fixed(bytes, "time")?))),
            TimeTz => {
                let raw: &[u8; 12] = fixed(bytes, "timetz")?;
                let (micros, zone) = raw.split_at(8);
                let micros =
                    i64::from_be_bytes(micros.try_into().map_err(|_| Malformed("timetz"))?);
                let west = i32::from_be_bytes(zone.try_into().map_err(|_| Malformed("timetz"))?);
                Value::String(format!("{}{}", time_of_day(micros), offset(-west)))
            }
            Timestamp => Value::String(timestamp(
                i64::from_be_bytes(*fixed(bytes, "timestamp")?),
                "",
            )),
            TimestampTz => Value::String(timestamp(
                i64::from_be_bytes(*fixed(bytes, "timestamptz")?),
                "Z",
            )),
            Interval => {
                let raw: &[u8; 16] = fixed(bytes, "interval")?;
                let micros = i64::from_be_bytes(take(raw, 0)?);
                let days = i32::from_be_bytes(take(raw, 8)?);
                let months = i32::from_be_bytes(take(raw, 12)?);
                Value::String(interval(micros, days, months))
            }
            Inet => Value::String(inet(bytes)?),
            MacAddr => {
                let raw: &[u8; 6] = fixed(bytes, "macaddr")?;
                let parts: Vec<String> = raw.iter().map(|b| format!("{b:02x}")).collect();
                Value::String(parts.join(":"))
            }
            Array(element) => array(element, bytes)?,
        })
    }
}

fn fixed<'a, const N: usize>(
    bytes: &'a [u8],
    what: &'static str,
) -> Result<&'a [u8; N], Malformed> {
    bytes.try_into().map_err(|_| Malformed(what))
}

fn take<const N: usize>(bytes: &[u8], at: usize) -> Result<[u8; N], Malformed> {
    bytes
        .get(at..at + N)
        .and_then(|s| s.try_into().ok())
        .ok_or(Malformed("value"))
}

/// JSON has no NaN or infinities: those become strings, as PostgreSQL writes them.
fn float(value: f64) -> Value {
    match serde_json::Number::from_f64(value) {
        Some(n) => Value::Number(n),
        None if value.is_nan() => Value::from("NaN"),
        None if value > 0.0 => Value::from("Infinity"),
        None => Value::from("-Infinity"),
    }
}

fn json(text: &[u8]) -> Value {
    serde_json::from_slice(text)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(text).into_owned()))
}

/// `\x` followed by the hex of at most `max_bytes` bytes (PostgreSQL's bytea text form).
pub(crate) fn bytea_hex(bytes: &[u8], max_bytes: usize) -> String {
    let shown = &bytes[..bytes.len().min(max_bytes)];
    let mut out = String::with_capacity(2 + 2 * shown.len());
    out.push_str("\\x");
    for b in shown {
        let _ = write!(out, "{b:02x}");
    }
    out
}

fn uuid(b: [u8; 16]) -> String {
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

/// The numeric binary form: digit count, weight (of the first base-10000 digit), sign, display
/// scale, then the base-10000 digits.
fn numeric(bytes: &[u8]) -> Result<String, Malformed> {
    let bad = || Malformed("numeric");
    let word = |i: usize| take::<2>(bytes, 2 * i).map(u16::from_be_bytes);
    let ndigits = usize::from(word(0).map_err(|_| bad())?);
    let weight = i64::from(word(1).map_err(|_| bad())? as i16);
    let sign = word(2).map_err(|_| bad())?;
    let dscale = usize::from(word(3).map_err(|_| bad())?);
    match sign {
        0xC000 => return Ok("NaN".into()),
        0xD000 => return Ok("Infinity".into()),
        0xF000 => return Ok("-Infinity".into()),
        0x0000 | 0x4000 => {}
        _ => return Err(bad()),
    }
    let digits: Vec<u16> = (0..ndigits)
        .map(|i| word(4 + i))
        .collect::<Result<_, _>>()
        .map_err(|_| bad())?;
    if digits.iter().any(|&d| d > 9999) {
        return Err(bad());
    }
    let digit = |position: i64| -> u16 {
        usize::try_from(position)
            .ok()
            .and_then(|i| digits.get(i).copied())
            .unwrap_or(0)
    };
    let mut out = String::new();
    if sign == 0x4000 && digits.iter().any(|&d| d != 0) {
        out.push('-');
    }
    if weight < 0 {
        out.push('0');
    } else {
        for position in 0..=weight {
            if position == 0 {
                let _ = write!(out, "{}", digit(position));
            } else {
                let _ = write!(out, "{:04}", digit(position));
            }
        }
    }
    if dscale > 0 {
        let mut fraction = String::with_capacity(dscale + 4);
        let mut position = weight + 1;
        while fraction.len() < dscale {
            let _ = write!(fraction, "{:04}", digit(position));
            position += 1;
        }
        fraction.truncate(dscale);
        out.push('.');
        out.push_str(&fraction);
    }
    Ok(out)
}

const MICROS_PER_SECOND: i64 = 1_000_000;
const MICROS_PER_DAY: i64 = 86_400 * MICROS_PER_SECOND;
/// Days from 1970-01-01 to PostgreSQL's epoch, 2000-01-01.
const PG_EPOCH_DAYS: i64 = 10_957;

/// Year, month, day of a day count since 1970-01-01 (proleptic Gregorian; H. Hinnant's
/// `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

fn ymd(days_since_pg_epoch: i64) -> String {
    let (year, month, day) = civil_from_days(days_since_pg_epoch + PG_EPOCH_DAYS);
    if (0..=9999).contains(&year) {
        format!("{year:04}-{month:02}-{day:02}")
    } else {
        format!("{year:+05}-{month:02}-{day:02}")
    }
}

fn date(days: i32) -> String {
    match days {
        i32::MAX => "infinity".into(),
        i32::MIN => "-infinity".into(),
        days => ymd(i64::from(days)),
    }
}

/// `HH:MM:SS` and, when not whole, the fraction without trailing zeros.
fn time_of_day(micros: i64) -> String {
    let seconds = micros.div_euclid(MICROS_PER_SECOND);
    let fraction = micros.rem_euclid(MICROS_PER_SECOND);
    let mut out = format!(
        "{:02}:{:02}:{:02}",
        seconds / 3600,
        (seconds / 60) % 60,
        seconds % 60
    );
    push_fraction(&mut out, fraction);
    out
}

fn push_fraction(out: &mut String, micros: i64) {
    if micros != 0 {
        let digits = format!("{micros:06}");
        out.push('.');
        out.push_str(digits.trim_end_matches('0'));
    }
}

/// `+hh:mm` for an offset east of UTC in seconds (seconds shown only when present).
fn offset(east_seconds: i32) -> String {
    let sign = if east_seconds < 0 { '-' } else { '+' };
    let abs = east_seconds.unsigned_abs();
    let mut out = format!("{sign}{:02}:{:02}", abs / 3600, (abs / 60) % 60);
    if !abs.is_multiple_of(60) {
        let _ = write!(out, ":{:02}", abs % 60);
    }
    out
}

fn timestamp(micros: i64, zone: &str) -> String {
    match micros {
        i64::MAX => "infinity".into(),
        i64::MIN => "-infinity".into(),
        micros => {
            let days = micros.div_euclid(MICROS_PER_DAY);
            let within = micros.rem_euclid(MICROS_PER_DAY);
            format!("{}T{}{zone}", ymd(days), time_of_day(within))
        }
    }
}

/// ISO 8601 duration, as PostgreSQL's `intervalstyle = iso_8601` writes it.
fn interval(micros: i64, days: i32, months: i32) -> String {
    let mut out = String::from("P");
    let (years, months) = (months / 12, months % 12);
    for (n, unit) in [(years, 'Y'), (months, 'M'), (days, 'D')] {
        if n != 0 {
            let _ = write!(out, "{n}{unit}");
        }
    }
    if micros != 0 {
        out.push('T');
        let negative = micros < 0;
        let abs = micros.unsigned_abs();
        let hours = abs / 3_600_000_000;
        let minutes = (abs / 60_000_000) % 60;
        let seconds = (abs / 1_000_000) % 60;
        let fraction = abs % 1_000_000;
        let sign = if negative { "-" } else { "" };
        if hours != 0 {
            let _ = write!(out, "{sign}{hours}H");
        }
        if minutes != 0 {
            let _ = write!(out, "{sign}{minutes}M");
        }
        if seconds != 0 || fraction != 0 {
            let _ = write!(out, "{sign}{seconds}");
            push_fraction(&mut out, fraction as i64);
            out.push('S');
        }
    }
    if out == "P" {
        out.push_str("T0S");
    }
    out
}

/// inet/cidr: family (2 = IPv4, 3 = IPv6), prefix bits, is-cidr flag, address length, address.
fn inet(bytes: &[u8]) -> Result<String, Malformed> {
    let bad = || Malformed("inet");
    let (head, address) = bytes.split_first_chunk::<4>().ok_or_else(bad)?;
    let [family, bits, is_cidr, len] = *head;
    if usize::from(len) != address.len() {
        return Err(bad());
    }
    let (text, full) = match family {
        2 => {
            let octets: [u8; 4] = address.try_into().map_err(|_| bad())?;
            (Ipv4Addr::from(octets).to_string(), 32)
        }
        3 => {
            let octets: [u8; 16] = address.try_into().map_err(|_| bad())?;
            (Ipv6Addr::from(octets).to_string(), 128)
        }
        _ => return Err(bad()),
    };
    Ok(if is_cidr != 0 || bits != full {
        format!("{text}/{bits}")
    } else {
        text
    })
}

/// The array binary form: dimensions, a has-nulls flag, the element type, each dimension's
/// length and lower bound, then each element as a length (-1 for NULL) and its bytes.
/// Multi-dimensional arrays become nested JSON arrays.
fn array(element: &Decoder, bytes: &[u8]) -> Result<Value, Malformed> {
    let bad = || Malformed("array");
    let int = |at: usize| take::<4>(bytes, at).map(i32::from_be_bytes);
    let ndim = usize::try_from(int(0)?).map_err(|_| bad())?;
    if ndim == 0 {
        return Ok(Value::Array(Vec::new()));
    }
    if ndim > 6 {
        return Err(bad());
    }
    let mut dims = Vec::with_capacity(ndim);
    for d in 0..ndim {
        dims.push(usize::try_from(int(12 + 8 * d)?).map_err(|_| bad())?);
    }
    let mut cursor = 12 + 8 * ndim;
    let total: usize = dims
        .iter()
        .try_fold(1usize, |acc, &n| acc.checked_mul(n))
        .ok_or_else(bad)?;
    let mut flat = Vec::with_capacity(total.min(bytes.len()));
    for _ in 0..total {
        let len = int(cursor)?;
        cursor += 4;
        if len < 0 {
            flat.push(Value::Null);
            continue;
        }
        let len = usize::try_from(len).map_err(|_| bad())?;
        let value = bytes.get(cursor..cursor + len).ok_or_else(bad)?;
        flat.push(element.decode(value)?);
        cursor += len;
    }
    Ok(nest(&mut flat.into_iter(), &dims))
}

fn nest(values: &mut impl Iterator<Item = Value>, dims: &[usize]) -> Value {
    match dims {
        [] => values.next().unwrap_or(Value::Null),
        [n, rest @ ..] => Value::Array((0..*n).map(|_| nest(values, rest)).collect()),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use serde_json::json;

    use super::*;

    #[test]
    fn integers_and_floats() {
        assert_eq!(Decoder::Int2.decode(&(-5i16).to_be_bytes()), Ok(json!(-5)));
        assert_eq!(
            Decoder::Int8.decode(&i64::MAX.to_be_bytes()),
            Ok(json!(i64::MAX))
        );
        assert_eq!(
            Decoder::Float8.decode(&1.5f64.to_be_bytes()),
            Ok(json!(1.5))
        );
        assert_eq!(
            Decoder::Float8.decode(&f64::NAN.to_be_bytes()),
            Ok(json!("NaN"))
        );
        assert_eq!(
            Decoder::Float4.decode(&f32::NEG_INFINITY.to_be_bytes()),
            Ok(json!("-Infinity"))
        );
        assert_eq!(Decoder::Int4.decode(&[0, 1]), Err(Malformed("int4")));
    }

    fn numeric_bytes(weight: i16, sign: u16, dscale: u16, digits: &[u16]) -> Vec<u8> {
        let mut out = Vec::new();
        for word in [digits.len() as u16, weight as u16, sign, dscale]
            .into_iter()
            .chain(digits.iter().copied())
        {
            out.extend(word.to_be_bytes());
        }
        out
    }

    #[test]
    fn numerics_are_exact_strings() {
        let d = Decoder::Numeric;
        // 12345.678: digits 1 2345 6780, weight 1, scale 3
        assert_eq!(
            d.decode(&numeric_bytes(1, 0, 3, &[1, 2345, 6780])),
            Ok(json!("12345.678"))
        );
        // -0.0001: digit 1 at weight -1, scale 4
        assert_eq!(
            d.decode(&numeric_bytes(-1, 0x4000, 4, &[1])),
            Ok(json!("-0.0001"))
        );
        // 0.00000123: weight -2 (0.0000 then 0123), scale 8
        assert_eq!(
            d.decode(&numeric_bytes(-2, 0, 8, &[123])),
            Ok(json!("0.00000123"))
        );
        // 10000 with trailing zero digits omitted: weight 1, digits [1]
        assert_eq!(d.decode(&numeric_bytes(1, 0, 0, &[1])), Ok(json!("10000")));
        assert_eq!(d.decode(&numeric_bytes(0, 0, 2, &[])), Ok(json!("0.00")));
        assert_eq!(
            d.decode(&numeric_bytes(0, 0xC000, 0, &[])),
            Ok(json!("NaN"))
        );
    }

    #[test]
    fn times_render_as_rfc3339() {
        let micros = |s: i64| s * MICROS_PER_SECOND;
        // 2024-02-29T12:34:56.5Z is 762_525_296.5 s after 2000-01-01.
        let t = micros(762_525_296) + 500_000;
        assert_eq!(
            Decoder::TimestampTz.decode(&t.to_be_bytes()),
            Ok(json!("2024-02-29T12:34:56.5Z"))
        );
        assert_eq!(
            Decoder::Timestamp.decode(&micros(-86_400).to_be_bytes()),
            Ok(json!("1999-12-31T00:00:00"))
        );
        assert_eq!(
            Decoder::TimestampTz.decode(&i64::MAX.to_be_bytes()),
            Ok(json!("infinity"))
        );
        assert_eq!(
            Decoder::Date.decode(&0i32.to_be_bytes()),
            Ok(json!("2000-01-01"))
        );
        assert_eq!(
            Decoder::Date.decode(&(-730_119i32).to_be_bytes()),
            Ok(json!("0001-01-01"))
        );
        let mut timetz = (micros(3600) + 1).to_be_bytes().to_vec();
        timetz.extend((-19_800i32).to_be_bytes());
        assert_eq!(
            Decoder::TimeTz.decode(&timetz),
            Ok(json!("01:00:00.000001+05:30"))
        );
    }

    #[test]
    fn intervals_are_iso_8601() {
        assert_eq!(interval(0, 0, 0), "PT0S");
        assert_eq!(interval(3_723_500_000, 3, 14), "P1Y2M3DT1H2M3.5S");
        assert_eq!(interval(-90 * MICROS_PER_SECOND, -1, 0), "P-1DT-1M-30S");
    }

    #[test]
    fn identifiers_and_addresses() {
        let id: [u8; 16] = core::array::from_fn(|i| i as u8);
        assert_eq!(
            Decoder::Uuid.decode(&id),
            Ok(json!("00010203-0405-0607-0809-0a0b0c0d0e0f"))
        );
        assert_eq!(
            Decoder::Inet.decode(&[2, 32, 0, 4, 10, 0, 0, 1]),
            Ok(json!("10.0.0.1"))
        );
        assert_eq!(
            Decoder::Inet.decode(&[2, 24, 1, 4, 10, 0, 0, 0]),
            Ok(json!("10.0.0.0/24"))
        );
        assert_eq!(
            Decoder::MacAddr.decode(&[8, 0, 0x2b, 1, 2, 3]),
            Ok(json!("08:00:2b:01:02:03"))
        );
        assert_eq!(Decoder::Bytea.decode(&[0xde, 0xad]), Ok(json!("\\xdead")));
        assert_eq!(Decoder::Jsonb.decode(b"\x01{\"a\":1}"), Ok(json!({"a": 1})));
    }

    #[test]
    fn arrays_nest_by_dimension() {
        // int4[2][2] = {{1,2},{3,NULL}}
        let mut bytes = Vec::new();
        for word in [2i32, 1, 23, 2, 1, 2, 1] {
            bytes.extend(word.to_be_bytes());
        }
        for value in [Some(1i32), Some(2), Some(3), None] {
            match value {
                Some(v) => {
                    bytes.extend(4i32.to_be_bytes());
                    bytes.extend(v.to_be_bytes());
                }
                None => bytes.extend((-1i32).to_be_bytes()),
            }
        }
        let d = Decoder::Array(Box::new(Decoder::Int4));
        assert_eq!(d.decode(&bytes), Ok(json!([[1, 2], [3, null]])));
        assert_eq!(
            d.decode(&[0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 23]),
            Ok(json!([]))
        );
        assert!(d.decode(&bytes[..bytes.len() - 6]).is_err());
    }
}
