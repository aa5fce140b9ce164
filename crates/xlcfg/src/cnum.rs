//! C number conversions exactly as xl applies them to spec values.
//!
//! xl converts `version=`, `ports=`, `controller=` and `port=` with `atoi`
//! and `hostbus=`/`hostaddr=` with `strtoul(v, NULL, 0)` truncated to
//! `uint8_t` (reference §2.2, §2.3). Both stop silently at the first
//! character that is not part of the number, so garbage becomes 0. These
//! functions reproduce glibc's results on LP64 (64-bit `long`) so that vusb
//! reads every spec the way `xl` does, including the surprising cases
//! (`008` is 0, `010` is 8, `256` wraps to 0).

/// Characters C's `isspace` accepts in the "C" locale.
fn is_c_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')
}

/// Skips leading C whitespace and an optional sign; returns the rest and
/// whether the sign was `-`.
fn split_sign(s: &str) -> (&[u8], bool) {
    let bytes = s.as_bytes();
    let start = bytes
        .iter()
        .position(|&b| !is_c_space(b))
        .unwrap_or(bytes.len());
    let rest = &bytes[start..];
    match rest.first() {
        Some(b'-') => (&rest[1..], true),
        Some(b'+') => (&rest[1..], false),
        _ => (rest, false),
    }
}

/// Accumulates digits of `radix` from the start of `digits`; returns the
/// magnitude (saturated at `u64::MAX`), whether it overflowed, and how many
/// digits were consumed.
fn accumulate(digits: &[u8], radix: u32) -> (u64, bool, usize) {
    let mut value: u64 = 0;
    let mut overflow = false;
    let mut used = 0;
    for &b in digits {
        let Some(d) = char::from(b).to_digit(radix) else {
            break;
        };
        used += 1;
        match value
            .checked_mul(u64::from(radix))
            .and_then(|v| v.checked_add(u64::from(d)))
        {
            Some(v) => value = v,
            None => {
                overflow = true;
                value = u64::MAX;
            }
        }
    }
    (value, overflow, used)
}

/// C `strtoul(s, NULL, 0)` on LP64: leading whitespace, optional sign,
/// `0x`/`0X` hex prefix, leading `0` octal, otherwise decimal; stops at the
/// first invalid digit; overflow gives `ULONG_MAX`; a `-` negates modulo 2^64.
pub fn strtoul0(s: &str) -> u64 {
    let (rest, negative) = split_sign(s);
    let (radix, digits) = match rest {
        [b'0', b'x' | b'X', next, ..] if char::from(*next).is_ascii_hexdigit() => (16, &rest[2..]),
        [b'0', ..] => (8, rest),
        _ => (10, rest),
    };
    let (value, overflow, _) = accumulate(digits, radix);
    if overflow {
        u64::MAX
    } else if negative {
        value.wrapping_neg()
    } else {
        value
    }
}

/// `(uint8_t) strtoul(s, NULL, 0)`: what xl stores for `hostbus=`/`hostaddr=`.
pub fn strtoul0_u8(s: &str) -> u8 {
    // Truncation to the low byte is exactly C's conversion to uint8_t.
    (strtoul0(s) & 0xff) as u8
}

/// glibc `atoi(s)`, i.e. `(int) strtol(s, NULL, 10)` on LP64: leading
/// whitespace, optional sign, decimal digits; `strtol` saturates at
/// `LONG_MIN`/`LONG_MAX` and the conversion to `int` keeps the low 32 bits.
pub fn atoi(s: &str) -> i32 {
    let (rest, negative) = split_sign(s);
    let (magnitude, overflow, _) = accumulate(rest, 10);
    let long: i64 = match (negative, overflow) {
        (false, false) => i64::try_from(magnitude).unwrap_or(i64::MAX),
        (true, false) if magnitude <= i64::MAX as u64 + 1 => {
            // -(2^63) fits; wrapping_neg of the u64 then reinterpret.
            (magnitude.wrapping_neg()) as i64
        }
        (true, _) => i64::MIN,
        (false, true) => i64::MAX,
    };
    // Conversion to int keeps the low 32 bits, as C does on every Xen host.
    long as i32
}

/// Why [`atoi_strict`] refused a text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AtoiError {
    /// Not a decimal number (empty, letters, `nan`, `0x1`, `1x`...).
    NotANumber,
    /// A number outside C's `int`, which `atoi` would silently wrap.
    OutOfRange,
}

impl AtoiError {
    /// The reason as vusb words it after the value.
    pub fn reason(self) -> &'static str {
        match self {
            AtoiError::NotANumber => "not a number",
            AtoiError::OutOfRange => "out of range",
        }
    }
}

/// `atoi` of a text that must be a whole number: optional C blanks around
/// it, an optional sign, decimal digits, and a value that fits C's `int`.
/// What xl would read with `atoi` in that case, without `atoi`'s silent 0
/// for garbage (`nan`, `""`, `port=l`) or wrap-around for huge values.
pub fn atoi_strict(s: &str) -> Result<i32, AtoiError> {
    let t = s.trim_matches(|c: char| c.is_ascii() && is_c_space(c as u8));
    let digits = t.strip_prefix(['+', '-']).unwrap_or(t);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(AtoiError::NotANumber);
    }
    let (rest, negative) = split_sign(t);
    let (magnitude, overflow, _) = accumulate(rest, 10);
    let value = if negative {
        0i64.checked_sub_unsigned(magnitude)
    } else {
        i64::try_from(magnitude).ok()
    };
    match value.and_then(|v| i32::try_from(v).ok()) {
        Some(v) if !overflow => Ok(v),
        _ => Err(AtoiError::OutOfRange),
    }
}

/// Why [`strtol0_full`] refused a text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StrtolError {
    /// `strtol` set `ERANGE`.
    Range,
    /// No digits, or characters left after the number.
    Invalid,
}

/// libxlu's number check: `strtol(s, &ep, 0)` must consume the whole text
/// (leading blanks and a sign allowed) and not overflow `long`.
pub fn strtol0_full(s: &str) -> Result<i64, StrtolError> {
    let (rest, negative) = split_sign(s);
    let (radix, digits, prefix) = match rest {
        [b'0', b'x' | b'X', next, ..] if char::from(*next).is_ascii_hexdigit() => {
            (16, &rest[2..], 2)
        }
        [b'0', ..] => (8, rest, 0),
        _ => (10, rest, 0),
    };
    let (magnitude, overflow, used) = accumulate(digits, radix);
    if used == 0 {
        return Err(StrtolError::Invalid);
    }
    let consumed = s.len() - rest.len() + prefix + used;
    if consumed != s.len() {
        return Err(StrtolError::Invalid);
    }
    let limit = if negative {
        i64::MAX as u64 + 1
    } else {
        i64::MAX as u64
    };
    if overflow || magnitude > limit {
        return Err(StrtolError::Range);
    }
    Ok(if negative {
        magnitude.wrapping_neg() as i64
    } else {
        magnitude as i64
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strtoul_base0_forms() {
        assert_eq!(strtoul0_u8("3"), 3);
        assert_eq!(strtoul0_u8("0x0a"), 10);
        assert_eq!(strtoul0_u8("0X1F"), 31);
        assert_eq!(strtoul0_u8("010"), 8);
        assert_eq!(strtoul0_u8("008"), 0);
        assert_eq!(strtoul0_u8("0"), 0);
        assert_eq!(strtoul0_u8(""), 0);
        assert_eq!(strtoul0_u8("abc"), 0);
        assert_eq!(strtoul0_u8("12abc"), 12);
        assert_eq!(strtoul0_u8("1,hostaddr=2"), 1);
        assert_eq!(strtoul0_u8("  \t7"), 7);
        assert_eq!(strtoul0_u8("+9"), 9);
        // "0x" with no hex digit parses the 0 only.
        assert_eq!(strtoul0_u8("0x"), 0);
        assert_eq!(strtoul0_u8("0xg"), 0);
    }

    #[test]
    fn strtoul_wraps_and_saturates_like_c() {
        assert_eq!(strtoul0_u8("256"), 0);
        assert_eq!(strtoul0_u8("257"), 1);
        assert_eq!(strtoul0_u8("-1"), 255);
        assert_eq!(strtoul0("-1"), u64::MAX);
        assert_eq!(strtoul0("99999999999999999999999"), u64::MAX);
        assert_eq!(strtoul0_u8("99999999999999999999999"), 255);
        assert_eq!(strtoul0("0xffffffffffffffff"), u64::MAX);
    }

    #[test]
    fn strtol_full_like_libxlu() {
        assert_eq!(strtol0_full("12"), Ok(12));
        assert_eq!(strtol0_full("0x10"), Ok(16));
        assert_eq!(strtol0_full("010"), Ok(8));
        assert_eq!(strtol0_full(" -3"), Ok(-3));
        assert_eq!(strtol0_full("0"), Ok(0));
        assert_eq!(strtol0_full("08"), Err(StrtolError::Invalid));
        assert_eq!(strtol0_full("0x"), Err(StrtolError::Invalid));
        assert_eq!(strtol0_full(""), Err(StrtolError::Invalid));
        assert_eq!(strtol0_full("12 "), Err(StrtolError::Invalid));
        assert_eq!(strtol0_full("1e3"), Err(StrtolError::Invalid));
        assert_eq!(strtol0_full("9223372036854775807"), Ok(i64::MAX));
        assert_eq!(strtol0_full("-9223372036854775808"), Ok(i64::MIN));
        assert_eq!(strtol0_full("9223372036854775808"), Err(StrtolError::Range));
    }

    #[test]
    fn atoi_strict_refuses_what_atoi_hides() {
        assert_eq!(atoi_strict("2"), Ok(2));
        assert_eq!(atoi_strict(" -3 "), Ok(-3));
        assert_eq!(atoi_strict("+007"), Ok(7));
        assert_eq!(atoi_strict("2147483647"), Ok(i32::MAX));
        assert_eq!(atoi_strict("-2147483648"), Ok(i32::MIN));
        for bad in [
            "", " ", "nan", "abc", "1x", "0x10", "-", "+", "1 2", "1.5", "\u{a0}1",
        ] {
            assert_eq!(atoi_strict(bad), Err(AtoiError::NotANumber), "{bad:?}");
        }
        for big in [
            "2147483648",
            "-2147483649",
            "4294967296",
            "99999999999999999999999",
        ] {
            assert_eq!(atoi_strict(big), Err(AtoiError::OutOfRange), "{big}");
        }
    }

    #[test]
    fn atoi_like_glibc() {
        assert_eq!(atoi("2"), 2);
        assert_eq!(atoi("abc"), 0);
        assert_eq!(atoi(""), 0);
        assert_eq!(atoi(" 12x"), 12);
        assert_eq!(atoi("-3"), -3);
        assert_eq!(atoi("010"), 10);
        assert_eq!(atoi("0x10"), 0);
        assert_eq!(atoi("2147483647"), i32::MAX);
        assert_eq!(atoi("2147483648"), i32::MIN);
        assert_eq!(atoi("4294967297"), 1);
        assert_eq!(atoi("99999999999999999999"), -1);
        assert_eq!(atoi("-99999999999999999999"), 0);
        assert_eq!(atoi("-9223372036854775808"), 0);
    }
}
