//! The `Authorization` header as HTTP parses it: `Bearer` (any case), one or
//! more spaces, a token68; or a bare token.

use super::Reason;

/// Tokens longer than this are refused unparsed.
pub const MAX_TOKEN_BYTES: usize = 16 * 1024;

/// The token68 characters (RFC 9110), as a lookup table: this runs over
/// every byte of every credential, cached or not.
const TOKEN68: [bool; 256] = {
    let mut table = [false; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        table[b] =
            c.is_ascii_alphanumeric() || matches!(c, b'-' | b'.' | b'_' | b'~' | b'+' | b'/');
        b += 1;
    }
    table
};

fn token68(s: &str) -> bool {
    let body = s.trim_end_matches('=');
    !body.is_empty() && body.bytes().all(|b| TOKEN68[usize::from(b)])
}

/// The credential in a header value (or a bare token), or why there is none.
pub fn credential(value: &str) -> Result<&str, Reason> {
    let value = value.trim_matches([' ', '\t']);
    if value.is_empty() {
        return Err(Reason::Missing);
    }
    if value.len() > MAX_TOKEN_BYTES {
        return Err(Reason::Malformed);
    }
    let token = match value.split_once(' ') {
        Some((scheme, rest)) if scheme.eq_ignore_ascii_case("bearer") => {
            rest.trim_start_matches(' ')
        }
        Some(_) => return Err(Reason::Malformed),
        None if value.eq_ignore_ascii_case("bearer") => return Err(Reason::Malformed),
        None => value,
    };
    if token68(token) {
        Ok(token)
    } else {
        Err(Reason::Malformed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schemes_as_http_parses_them() {
        assert_eq!(credential("Bearer abc.def.ghi"), Ok("abc.def.ghi"));
        assert_eq!(credential("bearer abc"), Ok("abc"));
        assert_eq!(credential("BEARER    abc=="), Ok("abc=="));
        assert_eq!(credential("abc"), Ok("abc"));
        assert_eq!(credential("  Bearer abc  "), Ok("abc"));
        assert_eq!(credential(""), Err(Reason::Missing));
        assert_eq!(credential("   "), Err(Reason::Missing));
        assert_eq!(credential("Bearer"), Err(Reason::Malformed));
        assert_eq!(credential("Bearer\tabc"), Err(Reason::Malformed));
        assert_eq!(credential("Basic dXNlcjpwYXNz"), Err(Reason::Malformed));
        assert_eq!(credential("Bearer a b"), Err(Reason::Malformed));
        assert_eq!(credential("Bearer a\"b"), Err(Reason::Malformed));
        assert_eq!(credential("Bearer ==="), Err(Reason::Malformed));
        assert_eq!(
            credential(&"a".repeat(MAX_TOKEN_BYTES + 1)),
            Err(Reason::Malformed)
        );
    }
}
