//! The Dockerfile language: [`parse`] turns text into [`Instruction`]s, checking what can be
//! checked without the build's variables (known instructions, their flags, their argument
//! forms); every error names the line. Substitution happens at execution, when the
//! variables are known ([`words`]).

mod lines;
pub mod words;

pub use lines::Directives;

/// A parse or evaluation error at a Dockerfile line.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("Dockerfile parse error line {line}: {message}")]
pub struct Error {
    pub line: usize,
    pub message: String,
}

impl Error {
    pub fn at(line: usize, message: impl Into<String>) -> Error {
        Error {
            line,
            message: message.into(),
        }
    }
}

/// A heredoc's body (`<<EOF` ... `EOF`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Heredoc {
    pub name: String,
    /// With a trailing newline per line.
    pub body: String,
    /// Unquoted marker: variables in the body are expanded.
    pub expand: bool,
}

/// The instructions of the reference.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Keyword {
    From,
    Run,
    Cmd,
    Entrypoint,
    Env,
    Arg,
    Label,
    Expose,
    Volume,
    User,
    Workdir,
    Shell,
    Stopsignal,
    Healthcheck,
    Onbuild,
    Copy,
    Add,
    Maintainer,
}

const KEYWORDS: &[(&str, Keyword, &[&str])] = &[
    ("FROM", Keyword::From, &["platform"]),
    ("RUN", Keyword::Run, &["mount", "network", "security"]),
    ("CMD", Keyword::Cmd, &[]),
    ("ENTRYPOINT", Keyword::Entrypoint, &[]),
    ("ENV", Keyword::Env, &[]),
    ("ARG", Keyword::Arg, &[]),
    ("LABEL", Keyword::Label, &[]),
    ("EXPOSE", Keyword::Expose, &[]),
    ("VOLUME", Keyword::Volume, &[]),
    ("USER", Keyword::User, &[]),
    ("WORKDIR", Keyword::Workdir, &[]),
    ("SHELL", Keyword::Shell, &[]),
    ("STOPSIGNAL", Keyword::Stopsignal, &[]),
    (
        "HEALTHCHECK",
        Keyword::Healthcheck,
        &[
            "interval",
            "timeout",
            "start-period",
            "start-interval",
            "retries",
        ],
    ),
    ("ONBUILD", Keyword::Onbuild, &[]),
    (
        "COPY",
        Keyword::Copy,
        &["from", "chown", "chmod", "link", "parents", "exclude"],
    ),
    (
        "ADD",
        Keyword::Add,
        &[
            "chown",
            "chmod",
            "link",
            "checksum",
            "keep-git-dir",
            "exclude",
        ],
    ),
    ("MAINTAINER", Keyword::Maintainer, &[]),
];

impl Keyword {
    pub fn name(self) -> &'static str {
        KEYWORDS
            .iter()
            .find(|k| k.1 == self)
            .map(|k| k.0)
            .unwrap_or("?")
    }

    /// Whether the exec (JSON array) form is recognised.
    fn takes_json(self) -> bool {
        use Keyword::*;
        matches!(
            self,
            Run | Cmd | Entrypoint | Shell | Volume | Copy | Add | Healthcheck
        )
    }
}

/// One instruction, its arguments as written (substituted at execution).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Instruction {
    /// 1-based line of its first line.
    pub line: usize,
    pub keyword: Keyword,
    /// `--name=value` flags before the arguments (`None`: a flag given without a value).
    pub flags: Vec<(String, Option<String>)>,
    /// The arguments after the flags, as written.
    pub args: String,
    /// The exec form, when the arguments are a JSON array of strings.
    pub json: Option<Vec<String>>,
    pub heredocs: Vec<Heredoc>,
    /// The whole instruction as written (continuations joined), for `Step N/M : ...`.
    pub original: String,
}

impl Instruction {
    /// The values of flag `name`, in order.
    pub fn flag_values(&self, name: &str) -> Vec<&str> {
        self.flags
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, v)| v.as_deref().unwrap_or(""))
            .collect()
    }

    /// The last value of flag `name`.
    pub fn flag(&self, name: &str) -> Option<&str> {
        self.flag_values(name).last().copied()
    }

    pub fn error(&self, message: impl Into<String>) -> Error {
        Error::at(self.line, message)
    }
}

/// A parsed Dockerfile.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Dockerfile {
    pub directives: Directives,
    pub instructions: Vec<Instruction>,
}

/// Parses `text`. The first instruction must be FROM or ARG; every instruction must be
/// known and have the arguments it needs.
pub fn parse(text: &str) -> Result<Dockerfile, Error> {
    let (directives, lines) = lines::split(text)?;
    let mut instructions = Vec::new();
    for l in lines {
        instructions.push(instruction(l.line, &l.text, l.heredocs, directives.escape)?);
    }
    match instructions.iter().find(|i| i.keyword != Keyword::Arg) {
        None => return Err(Error::at(1, "the Dockerfile has no FROM instruction")),
        Some(i) if i.keyword != Keyword::From => {
            return Err(i.error(format!(
                "{} before FROM: a Dockerfile starts with FROM (only ARG may come before it)",
                i.keyword.name()
            )))
        }
        _ => {}
    }
    Ok(Dockerfile {
        directives,
        instructions,
    })
}

/// One instruction from its logical line.
pub fn instruction(
    line: usize,
    text: &str,
    heredocs: Vec<Heredoc>,
    escape: char,
) -> Result<Instruction, Error> {
    let (word, rest) = match text.split_once(char::is_whitespace) {
        Some((w, r)) => (w, r.trim_start()),
        None => (text, ""),
    };
    let upper = word.to_ascii_uppercase();
    let Some(&(_, keyword, allowed)) = KEYWORDS.iter().find(|k| k.0 == upper) else {
        return Err(Error::at(line, format!("unknown instruction: {word}")));
    };
    let mut rest = rest;
    let mut flags = Vec::new();
    if !allowed.is_empty() {
        while let Some(after) = rest.strip_prefix("--") {
            let (flag, tail) = match after.split_once(char::is_whitespace) {
                Some((f, t)) => (f, t.trim_start()),
                None => (after, ""),
            };
            let (name, value) = match flag.split_once('=') {
                Some((n, v)) => (n, Some(unquote(v))),
                None => (flag, None),
            };
            if !allowed.contains(&name) {
                return Err(Error::at(
                    line,
                    format!(
                        "unknown flag: --{name} for {upper} (it takes {})",
                        allowed
                            .iter()
                            .map(|a| format!("--{a}"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                ));
            }
            flags.push((name.to_string(), value));
            rest = tail;
        }
    }
    let args = rest.trim().to_string();
    let json = if keyword.takes_json() && args.starts_with('[') {
        serde_json::from_str::<Vec<String>>(&args).ok()
    } else {
        None
    };
    let i = Instruction {
        line,
        keyword,
        flags,
        args,
        json,
        heredocs,
        original: text.trim().to_string(),
    };
    check(&i, escape)?;
    Ok(i)
}

/// `--from="x"` is `x`, as Docker's flag parser reads it.
fn unquote(v: &str) -> String {
    let v = v.trim();
    for q in ['"', '\''] {
        if let Some(inner) = v.strip_prefix(q).and_then(|s| s.strip_suffix(q)) {
            return inner.to_string();
        }
    }
    v.to_string()
}

/// What each instruction needs of its arguments.
fn check(i: &Instruction, escape: char) -> Result<(), Error> {
    use Keyword::*;
    let name = i.keyword.name();
    if i.args.is_empty() && !matches!(i.keyword, Cmd | Entrypoint) {
        return Err(i.error(format!("{name} requires at least one argument")));
    }
    match i.keyword {
        From => {
            let words = words::split_raw(&i.args, escape);
            match words.as_slice() {
                [_] => {}
                [_, as_, _] if as_.eq_ignore_ascii_case("as") => {}
                _ => return Err(i.error("FROM requires either one argument, or three: FROM <image> [AS <name>]")),
            }
        }
        Shell if i.json.is_none() => {
            return Err(i.error("SHELL requires the arguments to be in JSON form: SHELL [\"executable\", \"parameters\"]"))
        }
        Copy | Add => {
            let n = match &i.json {
                Some(j) => j.len(),
                None => words::split_raw(&i.args, escape).len(),
            };
            if n < 2 && i.heredocs.is_empty() {
                return Err(i.error(format!("{name} requires at least two arguments, but only one was provided. Destination could not be determined")));
            }
        }
        Onbuild => {
            let first = i.args.split_whitespace().next().unwrap_or("").to_ascii_uppercase();
            if ["ONBUILD", "FROM", "MAINTAINER"].contains(&first.as_str()) {
                return Err(i.error(format!("{first} isn't allowed as an ONBUILD trigger")));
            }
            instruction(i.line, &i.args, Vec::new(), escape)?;
        }
        Healthcheck => {
            let first = i.args.split_whitespace().next().unwrap_or("").to_ascii_uppercase();
            if first != "CMD" && first != "NONE" {
                return Err(i.error("HEALTHCHECK takes CMD <command> or NONE"));
            }
        }
        _ => {}
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_instruction_of_the_reference_parses() {
        let text = r#"# syntax=docker/dockerfile:1
ARG BASE=busybox
FROM --platform=linux/amd64 ${BASE} AS build
RUN --mount=type=cache,target=/c echo hi
RUN ["sh", "-c", "echo exec"]
CMD ["sh"]
ENTRYPOINT echo e
ENV A=1 B="two words"
ENV C three words
ARG X=1
LABEL a=b "c d"=e
EXPOSE 80/tcp 53/udp
VOLUME ["/data"]
USER nobody
WORKDIR /w
SHELL ["/bin/sh", "-ec"]
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=5s --retries=3 CMD true
ONBUILD RUN echo trigger
COPY --from=build --chown=1:1 --chmod=644 a b /dst/
ADD --chown=0 x.tar /
MAINTAINER someone
"#;
        let df = parse(text).unwrap();
        assert_eq!(df.directives.syntax.as_deref(), Some("docker/dockerfile:1"));
        assert_eq!(df.instructions.len(), 21);
        let from = &df.instructions[1];
        assert_eq!((from.line, from.keyword), (3, Keyword::From));
        assert_eq!(from.flag("platform"), Some("linux/amd64"));
        assert_eq!(from.args, "${BASE} AS build");
        assert_eq!(
            df.instructions[3].json.as_deref().unwrap(),
            ["sh", "-c", "echo exec"]
        );
        let copy = &df.instructions[18];
        assert_eq!(copy.flag("from"), Some("build"));
        assert_eq!(copy.flag("chmod"), Some("644"));
        assert_eq!(copy.args, "a b /dst/");
        assert_eq!(
            df.instructions[14].json.as_deref().unwrap(),
            ["/bin/sh", "-ec"]
        );
    }

    #[test]
    fn errors_name_the_line() {
        let e = parse("FROM x\n\nFROBNICATE y\n").unwrap_err();
        assert_eq!(e.line, 3);
        assert_eq!(
            e.to_string(),
            "Dockerfile parse error line 3: unknown instruction: FROBNICATE"
        );
        assert_eq!(parse("FROM x\nCOPY a\n").unwrap_err().line, 2);
        assert_eq!(parse("FROM x\nCOPY --bogus=1 a b\n").unwrap_err().line, 2);
        assert_eq!(parse("RUN x\n").unwrap_err().line, 1);
        assert_eq!(parse("FROM a b\n").unwrap_err().line, 1);
        assert_eq!(parse("FROM x\nSHELL sh -c\n").unwrap_err().line, 2);
        assert_eq!(parse("FROM x\nONBUILD FROM y\n").unwrap_err().line, 2);
        assert_eq!(parse("FROM x\nONBUILD BOGUS y\n").unwrap_err().line, 2);
        assert!(parse("# just a comment\n").is_err());
    }

    #[test]
    fn lowercase_keywords_and_heredocs() {
        let df = parse("from x\nrun <<EOF\necho a\nEOF\ncopy <<F /f\nbody\nF\n").unwrap();
        assert_eq!(df.instructions[1].keyword, Keyword::Run);
        assert_eq!(df.instructions[1].heredocs[0].body, "echo a\n");
        assert_eq!(df.instructions[2].heredocs[0].name, "F");
    }
}
