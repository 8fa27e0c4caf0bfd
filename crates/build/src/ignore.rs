//! `.dockerignore` with Docker's matching rules (its `patternmatcher`): one pattern a line,
//! `#` comments, `!` exceptions, the last matching pattern decides, `*` and `?` within one
//! path component, `**` across any number of them, and a pattern that matches a directory
//! excludes everything below it.

use regex::Regex;

/// The parsed patterns of a `.dockerignore`.
#[derive(Debug, Default)]
pub struct Ignore {
    patterns: Vec<Pattern>,
}

#[derive(Debug)]
struct Pattern {
    regex: Regex,
    exception: bool,
}

impl Ignore {
    /// Parses the file's text; a pattern that is not a valid glob is an error naming it.
    pub fn parse(text: &str) -> Result<Ignore, String> {
        let mut patterns = Vec::new();
        for line in text.lines() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (exception, pat) = match line.strip_prefix('!') {
                Some(p) => (true, p.trim()),
                None => (false, line),
            };
            let cleaned = clean(pat);
            if cleaned.is_empty() {
                continue;
            }
            let regex = Regex::new(&to_regex(&cleaned))
                .map_err(|e| format!("bad .dockerignore pattern {pat:?}: {e}"))?;
            patterns.push(Pattern { regex, exception });
        }
        Ok(Ignore { patterns })
    }

    /// Whether any pattern is an exception (then an excluded directory is still walked).
    pub fn has_exceptions(&self) -> bool {
        self.patterns.iter().any(|p| p.exception)
    }

    /// Whether `path` (relative to the context, `/`-separated) is excluded: by the last
    /// pattern matching it or one of its parent directories.
    pub fn excluded(&self, path: &str) -> bool {
        let path = path.trim_start_matches('/');
        let mut excluded = false;
        for p in &self.patterns {
            let hit =
                p.regex.is_match(path) || parents(path).any(|parent| p.regex.is_match(parent));
            if hit {
                excluded = !p.exception;
            }
        }
        excluded
    }
}

/// `a/b/c` → `a`, `a/b`.
fn parents(path: &str) -> impl Iterator<Item = &str> {
    path.match_indices('/').map(move |(i, _)| &path[..i])
}

/// `filepath.Clean` without the leading `/` and `./`.
fn clean(p: &str) -> String {
    let mut out: Vec<&str> = Vec::new();
    for c in p.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                out.pop();
            }
            c => out.push(c),
        }
    }
    out.join("/")
}

/// A glob as an anchored regex: `**` crosses `/`, `*` and `?` do not.
pub(crate) fn to_regex(glob: &str) -> String {
    let chars: Vec<char> = glob.chars().collect();
    let mut re = String::from("^");
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        match c {
            '*' if chars.get(i + 1) == Some(&'*') => {
                i += 1;
                if chars.get(i + 1) == Some(&'/') {
                    i += 1;
                }
                if i + 1 >= chars.len() {
                    re.push_str(".*");
                } else {
                    re.push_str("(.*/)?");
                }
            }
            '*' => re.push_str("[^/]*"),
            '?' => re.push_str("[^/]"),
            '[' => {
                // A class as written, up to its `]` (`[!x]` is Go's negation).
                let end = chars[i + 1..]
                    .iter()
                    .position(|&c| c == ']')
                    .map(|p| p + i + 1);
                match end {
                    Some(end) => {
                        let mut class: String = chars[i + 1..end].iter().collect();
                        if let Some(rest) = class.strip_prefix('!') {
                            class = format!("^{rest}");
                        }
                        re.push('[');
                        re.push_str(&class.replace('\\', "\\\\"));
                        re.push(']');
                        i = end;
                    }
                    None => re.push_str("\\["),
                }
            }
            '\\' if i + 1 < chars.len() => {
                i += 1;
                re.push_str(&regex::escape(&chars[i].to_string()));
            }
            c => re.push_str(&regex::escape(&c.to_string())),
        }
        i += 1;
    }
    re.push('$');
    re
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_rules() {
        let ig =
            Ignore::parse("# comment\n*.log\n!keep.log\nbuild/\n**/tmp\n/secret/*.key\n").unwrap();
        assert!(ig.excluded("a.log"));
        assert!(!ig.excluded("keep.log"));
        assert!(!ig.excluded("dir/a.log"), "* does not cross /");
        assert!(ig.excluded("build/x/y.c"), "a directory's contents");
        assert!(ig.excluded("tmp") && ig.excluded("a/b/tmp/c"));
        assert!(ig.excluded("secret/a.key") && !ig.excluded("secret/a.pem"));
        assert!(!ig.excluded("src/main.c"));
        assert!(ig.has_exceptions());
    }

    #[test]
    fn last_match_wins() {
        let ig = Ignore::parse("docs\n!docs/README.md\ndocs/README.md\n").unwrap();
        assert!(ig.excluded("docs/README.md"));
        let ig = Ignore::parse("**\n!src\n").unwrap();
        assert!(ig.excluded("x") && !ig.excluded("src") && !ig.excluded("src/a"));
        let ig = Ignore::parse("a?c\n[bc]d\n").unwrap();
        assert!(ig.excluded("abc") && ig.excluded("cd") && !ig.excluded("ad"));
    }
}
