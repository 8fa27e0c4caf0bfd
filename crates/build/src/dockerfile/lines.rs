//! From Dockerfile text to logical lines: parser directives at the top (`# escape=`,
//! `# syntax=`), comments, line continuations (with the comment and empty lines inside a
//! continuation skipped, as the reference says), and heredoc bodies after RUN, COPY and ADD.

use super::{Error, Heredoc};

/// The parser directives a Dockerfile may start with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Directives {
    /// `# escape=`: `\` (default) or `` ` ``.
    pub escape: char,
    /// `# syntax=`: accepted and recorded; strata always uses its own frontend.
    pub syntax: Option<String>,
}

impl Default for Directives {
    fn default() -> Self {
        Directives {
            escape: '\\',
            syntax: None,
        }
    }
}

/// One instruction's text, continuations joined, with the heredocs that follow it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogicalLine {
    /// 1-based line of the instruction's first line.
    pub line: usize,
    pub text: String,
    pub heredocs: Vec<Heredoc>,
}

/// Splits `text` into directives and logical lines.
pub fn split(text: &str) -> Result<(Directives, Vec<LogicalLine>), Error> {
    let lines: Vec<&str> = text.lines().collect();
    let (directives, mut i) = directives(&lines)?;
    let escape = directives.escape;
    let mut out = Vec::new();
    while i < lines.len() {
        if is_skipped(lines[i]) {
            i += 1;
            continue;
        }
        let line = i + 1;
        let mut text = String::new();
        loop {
            let l = lines[i];
            i += 1;
            let trimmed = l.trim_end();
            match trimmed.strip_suffix(escape) {
                Some(head) => {
                    text.push_str(head);
                    while i < lines.len() && is_skipped(lines[i]) {
                        i += 1;
                    }
                    if i == lines.len() {
                        break;
                    }
                }
                None => {
                    text.push_str(l);
                    break;
                }
            }
        }
        let heredocs = heredocs(&text, &lines, &mut i, line)?;
        out.push(LogicalLine {
            line,
            text: text.trim().to_string(),
            heredocs,
        });
    }
    Ok((directives, out))
}

/// Empty lines and comments (`#` first on the line) are not instructions.
fn is_skipped(line: &str) -> bool {
    let t = line.trim_start();
    t.is_empty() || t.starts_with('#')
}

/// The directives at the very top; they end at the first line that is not one.
fn directives(lines: &[&str]) -> Result<(Directives, usize), Error> {
    let mut d = Directives::default();
    let mut seen = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let Some((key, value)) = line
            .trim()
            .strip_prefix('#')
            .and_then(|rest| rest.split_once('='))
        else {
            return Ok((d, i));
        };
        let key = key.trim().to_ascii_lowercase();
        if key.is_empty() || key.contains(char::is_whitespace) {
            return Ok((d, i));
        }
        if seen.contains(&key) {
            return Err(Error::at(
                i + 1,
                format!("only one {key} parser directive can be used"),
            ));
        }
        let value = value.trim();
        match key.as_str() {
            "escape" => {
                d.escape = match value {
                    "\\" => '\\',
                    "`" => '`',
                    _ => {
                        return Err(Error::at(
                            i + 1,
                            format!("invalid escape token {value:?}: it must be ` or \\"),
                        ))
                    }
                }
            }
            "syntax" => d.syntax = Some(value.to_string()),
            // Unknown directives are comments, as in Docker (e.g. `# check=`).
            _ => {}
        }
        seen.push(key);
    }
    Ok((d, lines.len()))
}

/// The heredocs `text` opens (`<<EOF`, `<<-EOF`, `<<"EOF"`), each body read from `lines`
/// at `*i` up to its terminator. Only RUN, COPY and ADD take heredocs.
fn heredocs(text: &str, lines: &[&str], i: &mut usize, line: usize) -> Result<Vec<Heredoc>, Error> {
    let keyword = text.split_whitespace().next().unwrap_or("");
    if !["RUN", "COPY", "ADD"].contains(&keyword.to_ascii_uppercase().as_str()) {
        return Ok(Vec::new());
    }
    let mut out = Vec::new();
    for marker in markers(text) {
        let mut body = String::new();
        loop {
            let Some(l) = lines.get(*i) else {
                return Err(Error::at(
                    line,
                    format!(
                        "unterminated heredoc <<{}: no line {} ends it",
                        marker.name, marker.name
                    ),
                ));
            };
            *i += 1;
            let l = if marker.strip_tabs {
                l.trim_start_matches('\t')
            } else {
                l
            };
            if l == marker.name {
                break;
            }
            body.push_str(l);
            body.push('\n');
        }
        out.push(Heredoc {
            name: marker.name,
            body,
            expand: marker.expand,
        });
    }
    Ok(out)
}

struct Marker {
    name: String,
    strip_tabs: bool,
    expand: bool,
}

/// `<<[-]WORD`, `<<[-]"WORD"` or `<<[-]'WORD'` in `text` (not `<<<`).
fn markers(text: &str) -> Vec<Marker> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(at) = rest.find("<<") {
        let mut s = &rest[at + 2..];
        rest = s;
        if s.starts_with('<') {
            rest = s.trim_start_matches('<');
            continue;
        }
        let strip_tabs = s.starts_with('-');
        if strip_tabs {
            s = &s[1..];
        }
        let quote = s.chars().next().filter(|c| *c == '"' || *c == '\'');
        if quote.is_some() {
            s = &s[1..];
        }
        let name: String = s
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        if name.is_empty() || name.starts_with(|c: char| c.is_ascii_digit()) {
            continue;
        }
        let after = &s[name.len()..];
        if let Some(q) = quote {
            if !after.starts_with(q) {
                continue;
            }
        }
        out.push(Marker {
            name,
            strip_tabs,
            expand: quote.is_none(),
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn continuations_skip_comments_and_empty_lines() {
        let (_, lines) =
            split("FROM x\nRUN a \\\n# note\n\n  b \\\n  c\n\n# end\nCMD d\n").unwrap();
        let texts: Vec<_> = lines.iter().map(|l| (l.line, l.text.as_str())).collect();
        assert_eq!(texts, [(1, "FROM x"), (2, "RUN a   b   c"), (9, "CMD d")]);
    }

    #[test]
    fn escape_directive_changes_the_continuation() {
        let (d, lines) =
            split("# escape=`\n# syntax=docker/dockerfile:1\nFROM x\nRUN dir c:\\ `\n  /w\n")
                .unwrap();
        assert_eq!(d.escape, '`');
        assert_eq!(d.syntax.as_deref(), Some("docker/dockerfile:1"));
        assert_eq!(lines[1].text, "RUN dir c:\\   /w");
        assert_eq!(lines[1].line, 4);
    }

    #[test]
    fn directives_end_at_the_first_other_line() {
        let (d, _) = split("# a comment\n# escape=`\nFROM x\n").unwrap();
        assert_eq!(d.escape, '\\');
        assert!(split("# escape=x\nFROM y\n")
            .unwrap_err()
            .to_string()
            .contains("line 1"));
        assert!(split("# escape=`\n# escape=\\\n").is_err());
    }

    #[test]
    fn heredocs_are_read_after_their_instruction() {
        let text =
            "FROM x\nRUN <<EOF\necho hi\nEOF\nCOPY <<-'A' <<B /d/\n\tone $X\n\tA\ntwo\nB\nCMD x\n";
        let (_, lines) = split(text).unwrap();
        assert_eq!(lines.len(), 4);
        assert_eq!(lines[1].heredocs[0].body, "echo hi\n");
        let copy = &lines[2].heredocs;
        assert_eq!(
            (copy[0].name.as_str(), copy[0].body.as_str(), copy[0].expand),
            ("A", "one $X\n", false)
        );
        assert_eq!(
            (copy[1].name.as_str(), copy[1].body.as_str(), copy[1].expand),
            ("B", "two\n", true)
        );
        assert_eq!(lines[3].line, 10);
        let err = split("FROM x\nRUN <<EOF\necho\n").unwrap_err();
        assert!(err.to_string().contains("line 2"), "{err}");
    }
}
