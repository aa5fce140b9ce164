//! Every sysfs value format vusb reads, parsed in exactly this one place,
//! plus xl's number grammar for `hostbus=`/`hostaddr=`.
//!
//! Sysfs attributes end in `\n` on a real kernel; recordings and hand-made
//! trees sometimes drop it, and `version` carries a leading space
//! (`" 2.00\n"`). Every parser here accepts both forms. Nothing here does
//! I/O: [`crate::sysfs::SysfsPath`] reads the file and names it in errors.

/// Parse `s` like C `strtoul(s, NULL, 0)`: leading white space, an optional
/// sign, then `0x`/`0X` hex, a leading-zero octal or decimal number; parsing
/// stops at the first character that is not a digit of the base. Returns
/// the value and how many bytes were consumed (0 when no digit was found,
/// as C leaves `endptr` at the start). Overflow saturates to `u64::MAX`
/// (C's `ULONG_MAX` on 64-bit Linux); a minus sign negates modulo 2^64.
pub fn strtoul0(s: &str) -> (u64, usize) {
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() && (b[i] == b' ' || (b'\t'..=b'\r').contains(&b[i])) {
        i += 1;
    }
    let mut negative = false;
    if i < b.len() && (b[i] == b'+' || b[i] == b'-') {
        negative = b[i] == b'-';
        i += 1;
    }
    let mut base = 10u64;
    if b.get(i) == Some(&b'0') {
        let hex_prefix = matches!(b.get(i + 1), Some(b'x' | b'X'))
            && b.get(i + 2).is_some_and(|c| c.is_ascii_hexdigit());
        if hex_prefix {
            base = 16;
            i += 2;
        } else {
            base = 8;
        }
    }
    let start = i;
    let mut value: u64 = 0;
    let mut overflow = false;
    while let Some(d) = b.get(i).and_then(|c| (*c as char).to_digit(base as u32)) {
        match value
            .checked_mul(base)
            .and_then(|v| v.checked_add(u64::from(d)))
        {
            Some(v) => value = v,
            None => overflow = true,
        }
        i += 1;
    }
    if i == start && base != 8 {
        return (0, 0);
    }
    if overflow {
        return (u64::MAX, i);
    }
    (
        if negative {
            value.wrapping_neg()
        } else {
            value
        },
        i,
    )
}

/// A `hostbus=`/`hostaddr=` value as xl reads it: `strtoul(v, NULL, 0)`
/// stored into a `uint8_t` (reference §2.3): `"0x0a"` = 10, `"010"` = 8,
/// `"008"` = 0, `"258"` = 2. Trailing garbage is ignored, as in xl.
pub fn xl_uint8(s: &str) -> u8 {
    // Truncation to 8 bits is the documented xl behaviour.
    (strtoul0(s).0 & 0xff) as u8
}

/// Strip one trailing newline (and a `\r` before it) and surrounding
/// spaces, the way sysfs numbers are padded.
pub fn trim_value(raw: &str) -> &str {
    raw.trim_matches(|c: char| c == '\n' || c == '\r' || c == ' ' || c == '\t')
}

/// A string attribute (manufacturer, product, serial): only the trailing
/// newline is removed; inner and other spaces are kept as the device sent
/// them. Invalid UTF-8 is replaced, never fatal.
pub fn string_value(raw: &[u8]) -> String {
    let text = String::from_utf8_lossy(raw);
    text.strip_suffix('\n').unwrap_or(&text).to_owned()
}

/// A hexadecimal id of at most `max_digits` digits, with or without `0x`
/// (`idVendor` is `"046d\n"`, `bDeviceClass` is `"09\n"`).
pub fn hex_u32(raw: &str, max_digits: usize) -> Option<u32> {
    let t = trim_value(raw);
    let t = t
        .strip_prefix("0x")
        .or_else(|| t.strip_prefix("0X"))
        .unwrap_or(t);
    if t.is_empty() || t.len() > max_digits || !t.bytes().all(|c| c.is_ascii_hexdigit()) {
        return None;
    }
    u32::from_str_radix(t, 16).ok()
}

/// A decimal number (`busnum`, `devnum`).
pub fn decimal_u32(raw: &str) -> Option<u32> {
    let t = trim_value(raw);
    if t.is_empty() || !t.bytes().all(|c| c.is_ascii_digit()) {
        return None;
    }
    t.parse().ok()
}

/// A decimal number of at most 255 (`devnum`).
pub fn decimal_u8(raw: &str) -> Option<u8> {
    decimal_u32(raw).and_then(|n| u8::try_from(n).ok())
}

/// The `speed` attribute in kbit/s: `"1.5"` → 1500, `"480"` → 480000.
/// `None` for the kernel's `"unknown"` and anything malformed.
pub fn speed_kbps(raw: &str) -> Option<u32> {
    let t = trim_value(raw);
    let (whole, frac) = match t.split_once('.') {
        Some((w, f)) => (w, f),
        None => (t, ""),
    };
    if whole.is_empty() || !whole.bytes().all(|c| c.is_ascii_digit()) {
        return None;
    }
    if frac.len() > 3 || !frac.bytes().all(|c| c.is_ascii_digit()) {
        return None;
    }
    let whole: u32 = whole.parse().ok()?;
    let mut frac_kbps = 0u32;
    for (i, c) in frac.bytes().enumerate() {
        frac_kbps += u32::from(c - b'0') * 10u32.pow(2 - i as u32);
    }
    whole.checked_mul(1000)?.checked_add(frac_kbps)
}

/// The `version` attribute (`bcdUSB` as text, `" 2.00\n"`): the trimmed
/// `"2.00"`, checked to be `<digits>.<2 digits>`.
pub fn usb_version(raw: &str) -> Option<String> {
    let t = trim_value(raw);
    let (major, minor) = t.split_once('.')?;
    let ok = !major.is_empty()
        && major.bytes().all(|c| c.is_ascii_digit())
        && minor.len() == 2
        && minor.bytes().all(|c| c.is_ascii_digit());
    ok.then(|| t.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strtoul_matches_c_base_zero() {
        assert_eq!(xl_uint8("0x0a"), 10);
        assert_eq!(xl_uint8("010"), 8);
        assert_eq!(xl_uint8("008"), 0);
        assert_eq!(xl_uint8("258"), 2);
        assert_eq!(xl_uint8("256"), 0);
        assert_eq!(xl_uint8("  7abc"), 7);
        assert_eq!(xl_uint8("abc"), 0);
        assert_eq!(xl_uint8(""), 0);
        assert_eq!(xl_uint8("0x"), 0);
        assert_eq!(xl_uint8("0xg"), 0);
        assert_eq!(xl_uint8("-1"), 255);
        assert_eq!(xl_uint8("+3"), 3);
        assert_eq!(xl_uint8("0XFF"), 255);
        assert_eq!(xl_uint8("99999999999999999999999"), 255);
        assert_eq!(strtoul0("0x1z"), (1, 3));
        assert_eq!(strtoul0("0"), (0, 1));
        assert_eq!(strtoul0("x"), (0, 0));
    }

    #[test]
    fn hex_ids_with_and_without_newline_or_prefix() {
        assert_eq!(hex_u32("046d\n", 4), Some(0x046d));
        assert_eq!(hex_u32("046D", 4), Some(0x046d));
        assert_eq!(hex_u32("0x046d", 4), Some(0x046d));
        assert_eq!(hex_u32("09\n", 2), Some(9));
        assert_eq!(hex_u32("12345", 4), None);
        assert_eq!(hex_u32("", 4), None);
        assert_eq!(hex_u32("zz", 2), None);
    }

    #[test]
    fn speeds_in_kbps() {
        assert_eq!(speed_kbps("1.5\n"), Some(1500));
        assert_eq!(speed_kbps("12"), Some(12_000));
        assert_eq!(speed_kbps("480\n"), Some(480_000));
        assert_eq!(speed_kbps("5000"), Some(5_000_000));
        assert_eq!(speed_kbps("20000\n"), Some(20_000_000));
        assert_eq!(speed_kbps("unknown\n"), None);
        assert_eq!(speed_kbps("1.2.3"), None);
    }

    #[test]
    fn versions_trimmed() {
        assert_eq!(usb_version(" 2.00\n").as_deref(), Some("2.00"));
        assert_eq!(usb_version("3.10").as_deref(), Some("3.10"));
        assert_eq!(usb_version("2.0"), None);
        assert_eq!(usb_version("two"), None);
    }

    /// Pseudo-random inputs (a fixed xorshift stream): no parser panics,
    /// and the results keep their invariants.
    #[test]
    fn arbitrary_bytes_never_panic() {
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let alphabet = b"0123456789abcdefxX.-+ \n\t\r:\xc3\xa9\xff";
        for _ in 0..20_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let len = (x % 12) as usize;
            let bytes: Vec<u8> = (0..len)
                .map(|i| alphabet[((x >> (i * 5)) as usize) % alphabet.len()])
                .collect();
            let text = String::from_utf8_lossy(&bytes);
            let (v, used) = strtoul0(&text);
            assert!(used <= text.len());
            assert_eq!(xl_uint8(&text), (v & 0xff) as u8);
            if let Some(h) = hex_u32(&text, 4) {
                assert!(h <= 0xffff);
            }
            let _ = speed_kbps(&text);
            if let Some(v) = usb_version(&text) {
                assert_eq!(v.as_bytes()[v.len() - 3], b'.');
            }
            let _ = decimal_u32(&text);
            let _ = string_value(&bytes);
        }
    }

    #[test]
    fn strings_keep_non_ascii_and_inner_spaces() {
        assert_eq!(
            string_value("Générique  USB\n".as_bytes()),
            "Générique  USB"
        );
        assert_eq!(string_value(b"no newline"), "no newline");
        assert_eq!(string_value(b"bad \xff byte\n"), "bad \u{fffd} byte");
        assert_eq!(decimal_u32(" 12\n"), Some(12));
        assert_eq!(decimal_u32("1a"), None);
        assert_eq!(decimal_u8("127\n"), Some(127));
        assert_eq!(decimal_u8("256"), None);
    }
}
