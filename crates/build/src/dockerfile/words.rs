//! Variable substitution and word splitting as the Dockerfile reference defines them for
//! the instructions the builder expands (FROM, COPY, ADD, ENV, ARG, LABEL, EXPOSE, USER,
//! WORKDIR, VOLUME, STOPSIGNAL, ONBUILD's neighbours): `$VAR`, `${VAR}`, `${VAR:-default}`,
//! `${VAR:+alternative}`; single quotes keep everything literal, double quotes keep spaces,
//! the escape character makes the next character literal.

/// Looks a variable up; `Err` is a message (an ARG used before it is declared).
pub type Lookup<'a> = dyn Fn(&str) -> Result<Option<String>, String> + 'a;

/// `text` as one word: quotes removed, variables substituted, nothing split.
pub fn expand_word(text: &str, lookup: &Lookup<'_>, escape: char) -> Result<String, String> {
    Ok(Lexer::new(text, lookup, escape).run(false)?.join(""))
}

/// `text` split into words at unquoted whitespace, each expanded as [`expand_word`].
pub fn expand_words(text: &str, lookup: &Lookup<'_>, escape: char) -> Result<Vec<String>, String> {
    Lexer::new(text, lookup, escape).run(true)
}

/// Splits at unquoted whitespace, keeping quotes and escapes as written (for ENV and LABEL
/// pairs, whose values are expanded one by one).
pub fn split_raw(text: &str, escape: char) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quote = None;
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        match (quote, c) {
            (None, c) if c.is_whitespace() => {
                if !cur.is_empty() {
                    out.push(std::mem::take(&mut cur));
                }
                continue;
            }
            (_, c) if c == escape && quote != Some('\'') => {
                cur.push(c);
                if let Some(n) = chars.next() {
                    cur.push(n);
                }
                continue;
            }
            (None, '\'' | '"') => quote = Some(c),
            (Some(q), c) if c == q => quote = None,
            _ => {}
        }
        cur.push(c);
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

struct Lexer<'a, 'l> {
    chars: Vec<char>,
    pos: usize,
    lookup: &'a Lookup<'l>,
    escape: char,
}

impl<'a, 'l> Lexer<'a, 'l> {
    fn new(text: &str, lookup: &'a Lookup<'l>, escape: char) -> Self {
        Lexer {
            chars: text.chars().collect(),
            pos: 0,
            lookup,
            escape,
        }
    }

    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn next(&mut self) -> Option<char> {
        let c = self.peek();
        self.pos += 1;
        c
    }

    fn run(&mut self, split: bool) -> Result<Vec<String>, String> {
        let mut words = Vec::new();
        let mut cur = String::new();
        // A word that is only `""` is still a word.
        let mut started = false;
        while let Some(c) = self.next() {
            match c {
                c if split && c.is_whitespace() => {
                    if started {
                        words.push(std::mem::take(&mut cur));
                        started = false;
                    }
                }
                '\'' => {
                    started = true;
                    loop {
                        match self.next() {
                            Some('\'') => break,
                            Some(c) => cur.push(c),
                            None => return Err("unexpected end of text: a ' is not closed".into()),
                        }
                    }
                }
                '"' => {
                    started = true;
                    loop {
                        match self.next() {
                            Some('"') => break,
                            Some(c) if c == self.escape => match self.next() {
                                Some(n @ ('"' | '$')) => cur.push(n),
                                Some(n) if n == self.escape => cur.push(n),
                                Some(n) => {
                                    cur.push(c);
                                    cur.push(n);
                                }
                                None => cur.push(c),
                            },
                            Some('$') => cur.push_str(&self.variable()?),
                            Some(c) => cur.push(c),
                            None => return Err("unexpected end of text: a \" is not closed".into()),
                        }
                    }
                }
                c if c == self.escape => {
                    started = true;
                    match self.next() {
                        Some(n) => cur.push(n),
                        None => cur.push(c),
                    }
                }
                '$' => {
                    started = true;
                    cur.push_str(&self.variable()?);
                }
                c => {
                    started = true;
                    cur.push(c);
                }
            }
        }
        if started || !split {
            words.push(cur);
        }
        Ok(words)
    }

    /// After a `$`: the variable's value, or `$` itself when no name follows.
    fn variable(&mut self) -> Result<String, String> {
        match self.peek() {
            Some('{') => {
                self.pos += 1;
                self.braced()
            }
            Some(c) if c.is_ascii_alphanumeric() || c == '_' => {
                let name = self.name();
                Ok((self.lookup)(&name)?.unwrap_or_default())
            }
            _ => Ok("$".into()),
        }
    }

    fn name(&mut self) -> String {
        let mut name = String::new();
        while let Some(c) = self
            .peek()
            .filter(|c| c.is_ascii_alphanumeric() || *c == '_')
        {
            name.push(c);
            self.pos += 1;
        }
        name
    }

    /// `${NAME}`, `${NAME:-word}`, `${NAME:+word}`.
    fn braced(&mut self) -> Result<String, String> {
        let name = self.name();
        if name.is_empty() {
            return Err("bad substitution: ${} needs a variable name".into());
        }
        let value = (self.lookup)(&name)?;
        match self.next() {
            Some('}') => Ok(value.unwrap_or_default()),
            Some(':') => {
                let modifier = self.next();
                let word = self.until_brace(&name)?;
                let set = value.as_deref().is_some_and(|v| !v.is_empty());
                match modifier {
                    Some('-') if set => Ok(value.unwrap_or_default()),
                    Some('-') => expand_word(&word, self.lookup, self.escape),
                    Some('+') if set => expand_word(&word, self.lookup, self.escape),
                    Some('+') => Ok(String::new()),
                    Some(m) => Err(format!(
                        "unsupported modifier ({m}) in substitution of ${{{name}}}: use :- or :+"
                    )),
                    None => Err(format!("missing '}}' in substitution of ${{{name}")),
                }
            }
            Some(c) => Err(format!(
                "unsupported modifier ({c}) in substitution of ${{{name}}}: use :- or :+"
            )),
            None => Err(format!("missing '}}' in substitution of ${{{name}")),
        }
    }

    /// The raw text of a modifier's word, up to the matching `}`.
    fn until_brace(&mut self, name: &str) -> Result<String, String> {
        let mut depth = 0;
        let mut word = String::new();
        loop {
            match self.next() {
                Some('}') if depth == 0 => return Ok(word),
                Some(c) => {
                    if c == '{' {
                        depth += 1;
                    } else if c == '}' {
                        depth -= 1;
                    }
                    word.push(c);
                }
                None => return Err(format!("missing '}}' in substitution of ${{{name}")),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Result<Option<String>, String> {
        Ok(match name {
            "A" => Some("a".into()),
            "SP" => Some("x y".into()),
            "EMPTY" => Some(String::new()),
            "LATER" => return Err("LATER is used before its ARG".into()),
            _ => None,
        })
    }

    fn word(s: &str) -> String {
        expand_word(s, &env, '\\').unwrap()
    }

    #[test]
    fn substitutes_with_modifiers() {
        assert_eq!(word("$A-${A}"), "a-a");
        assert_eq!(word("${NONE:-dflt}"), "dflt");
        assert_eq!(word("${EMPTY:-dflt}"), "dflt");
        assert_eq!(word("${A:-dflt}"), "a");
        assert_eq!(word("${A:+alt}"), "alt");
        assert_eq!(word("${NONE:+alt}"), "");
        assert_eq!(word("${NONE:-$A/x}"), "a/x");
        assert_eq!(word("cost $"), "cost $");
        assert!(expand_word("${A?x}", &env, '\\')
            .unwrap_err()
            .contains("unsupported modifier"));
        assert!(expand_word("${A", &env, '\\').is_err());
        assert!(expand_word("$LATER", &env, '\\')
            .unwrap_err()
            .contains("before its ARG"));
    }

    #[test]
    fn quotes_and_escapes() {
        assert_eq!(word("'$A'"), "$A");
        assert_eq!(word("\"$A b\""), "a b");
        assert_eq!(word("\\$A"), "$A");
        assert_eq!(word("a\\ b"), "a b");
        assert_eq!(expand_word("`$A", &env, '`').unwrap(), "$A");
        let words = expand_words("one \"two three\" $SP ''", &env, '\\').unwrap();
        assert_eq!(words, ["one", "two three", "x y", ""]);
    }

    #[test]
    fn raw_split_keeps_quotes() {
        assert_eq!(
            split_raw("a=\"b c\" d='e f' g\\ h", '\\'),
            ["a=\"b c\"", "d='e f'", "g\\ h"]
        );
    }
}
