//! `WWW-Authenticate` challenges (RFC 7235) as registries send them:
//! `Bearer realm="https://auth.example/token",service="registry",scope="repository:x:pull"`
//! or `Basic realm="Registry Realm"`.

use std::collections::HashMap;

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Challenge {
    /// Lowercased: `bearer`, `basic`.
    pub scheme: String,
    /// Parameter names lowercased.
    pub params: HashMap<String, String>,
}

/// All challenges in one header value. A comma separates parameters and challenges alike: a
/// token followed by a space (not `=`) starts a new challenge.
pub(crate) fn parse(header: &str) -> Vec<Challenge> {
    let mut challenges: Vec<Challenge> = Vec::new();
    let mut rest = header.trim_start();
    while !rest.is_empty() {
        let token_end = rest
            .find(|c: char| c == '=' || c == ',' || c.is_whitespace())
            .unwrap_or(rest.len());
        let token = &rest[..token_end];
        let after = rest[token_end..].trim_start();
        if let Some(value_part) = after
            .strip_prefix('=')
            .filter(|_| !challenges.is_empty() && !token.is_empty())
        {
            let (value, remaining) = parse_value(value_part.trim_start());
            if let Some(current) = challenges.last_mut() {
                current.params.insert(token.to_ascii_lowercase(), value);
            }
            rest = remaining;
        } else if !token.is_empty() {
            challenges.push(Challenge {
                scheme: token.to_ascii_lowercase(),
                params: HashMap::new(),
            });
            rest = after;
        } else {
            rest = &after[after.chars().next().map_or(0, char::len_utf8)..];
        }
        rest = rest.trim_start().trim_start_matches(',').trim_start();
    }
    challenges
}

/// A quoted string (with `\` escapes) or a bare token; returns the value and what follows.
fn parse_value(input: &str) -> (String, &str) {
    if let Some(quoted) = input.strip_prefix('"') {
        let mut value = String::new();
        let mut chars = quoted.char_indices();
        while let Some((i, c)) = chars.next() {
            match c {
                '\\' => {
                    if let Some((_, escaped)) = chars.next() {
                        value.push(escaped);
                    }
                }
                '"' => return (value, &quoted[i + 1..]),
                _ => value.push(c),
            }
        }
        (value, "")
    } else {
        let end = input
            .find(|c: char| c == ',' || c.is_whitespace())
            .unwrap_or(input.len());
        (input[..end].to_string(), &input[end..])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_and_basic() {
        let c = parse(
            r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/busybox:pull,push""#,
        );
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].scheme, "bearer");
        assert_eq!(c[0].params["realm"], "https://auth.docker.io/token");
        assert_eq!(c[0].params["service"], "registry.docker.io");
        assert_eq!(c[0].params["scope"], "repository:library/busybox:pull,push");
        let c = parse(r#"Basic realm="Registry Realm""#);
        assert_eq!(
            (c[0].scheme.as_str(), c[0].params["realm"].as_str()),
            ("basic", "Registry Realm")
        );
        let c = parse(r#"Basic realm=x, Bearer realm="a\"b", error=insufficient_scope"#);
        assert_eq!(c.len(), 2);
        assert_eq!(c[1].params["realm"], "a\"b");
        assert_eq!(c[1].params["error"], "insufficient_scope");
        assert!(parse("").is_empty());
    }
}
