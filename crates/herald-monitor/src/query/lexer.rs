//! Splits a query into tokens: parentheses, `AND`/`OR`/`NOT`, filters, quoted strings,
//! `/regex/` literals and bare words, each with its byte position.

use super::QueryError;

/// The filters the query language knows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Field {
    Type,
    Repo,
    File,
    Author,
    Committer,
    Message,
    Before,
    After,
    Case,
    PatternType,
}

impl Field {
    fn lookup(name: &str) -> Option<Field> {
        Some(match name.to_ascii_lowercase().as_str() {
            "type" => Field::Type,
            "repo" | "r" => Field::Repo,
            "file" | "f" | "path" => Field::File,
            "author" => Field::Author,
            "committer" => Field::Committer,
            "message" | "msg" | "m" => Field::Message,
            "before" | "until" => Field::Before,
            "after" | "since" => Field::After,
            "case" => Field::Case,
            "patterntype" => Field::PatternType,
            _ => return None,
        })
    }

    fn negatable(self) -> bool {
        matches!(
            self,
            Field::Repo | Field::File | Field::Author | Field::Committer | Field::Message
        )
    }
}

/// Sourcegraph filters that mean something there but not for code monitors: refusing them
/// beats silently searching for the text `lang:go`.
const UNSUPPORTED_FILTERS: &[&str] = &[
    "lang",
    "language",
    "l",
    "count",
    "select",
    "rev",
    "revision",
    "visibility",
    "fork",
    "archived",
    "timeout",
    "context",
    "content",
    "repohasfile",
    "index",
    "stable",
];

#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum TokenKind {
    LParen,
    RParen,
    Or,
    And,
    Not,
    /// Unquoted text: a literal or a regex depending on `patterntype:`.
    Word,
    /// A quoted string: always a literal.
    Quoted(String),
    /// `/.../`: always a regex; the token's text lies between the slashes.
    Slashed,
    Filter {
        negated: bool,
        field: Field,
        value: String,
        value_pos: usize,
        value_verbatim: bool,
    },
}

#[derive(Clone, Debug)]
pub(super) struct Token {
    pub kind: TokenKind,
    /// Byte offset of the token in the query.
    pub pos: usize,
    /// Byte offset just past the token.
    pub end: usize,
}

pub(super) fn tokenize(query: &str) -> Result<Vec<Token>, QueryError> {
    Lexer {
        src: query,
        pos: 0,
        depth: 0,
        tokens: Vec::new(),
    }
    .run()
}

struct Lexer<'a> {
    src: &'a str,
    pos: usize,
    depth: usize,
    tokens: Vec<Token>,
}

impl Lexer<'_> {
    fn run(mut self) -> Result<Vec<Token>, QueryError> {
        loop {
            self.skip_whitespace();
            let Some(c) = self.peek() else { break };
            let start = self.pos;
            match c {
                '(' if !self.parenthesized_word(start) => {
                    self.depth += 1;
                    self.pos += 1;
                    self.push(TokenKind::LParen, start, self.pos);
                }
                ')' if self.depth > 0 => {
                    self.depth -= 1;
                    self.pos += 1;
                    self.push(TokenKind::RParen, start, self.pos);
                }
                '"' | '\'' => {
                    let (text, end) = quoted(self.src, start)?;
                    self.pos = end;
                    self.push(TokenKind::Quoted(text), start, end);
                }
                '/' if self.slashed(start) => {}
                _ => self.word(start)?,
            }
        }
        Ok(self.tokens)
    }

    fn peek(&self) -> Option<char> {
        self.src[self.pos..].chars().next()
    }

    fn skip_whitespace(&mut self) {
        let rest = &self.src[self.pos..];
        self.pos += rest.len() - rest.trim_start().len();
    }

    fn push(&mut self, kind: TokenKind, pos: usize, end: usize) {
        self.tokens.push(Token { kind, pos, end });
    }

    /// Whether the token may end at `at`: whitespace, the end, or a closing parenthesis.
    fn token_ends_at(&self, at: usize) -> bool {
        match self.src[at..].chars().next() {
            None => true,
            Some(c) => c.is_whitespace() || (c == ')' && self.depth > 0),
        }
    }

    /// Whether the parenthesis at `start` opens a word like `(a|b)` or `(foo)bar` rather than
    /// a group: its balanced closing parenthesis comes before any whitespace, as in
    /// Sourcegraph, where `(alpha|beta)` is a pattern and `(foo OR bar)` a group.
    fn parenthesized_word(&self, start: usize) -> bool {
        let mut depth = 0usize;
        for c in self.src[start..].chars() {
            match c {
                '(' => depth += 1,
                ')' => {
                    depth -= 1;
                    if depth == 0 {
                        return true;
                    }
                }
                c if c.is_whitespace() => return false,
                _ => {}
            }
        }
        false
    }

    /// `/regex/`: a slash, then text up to an unescaped slash that ends the token. Without
    /// such a closing slash the text is an ordinary word (a path like `/usr/bin`).
    fn slashed(&mut self, start: usize) -> bool {
        let bytes = self.src.as_bytes();
        let mut i = start + 1;
        while i < bytes.len() {
            match bytes[i] {
                b'\\' => i += 2,
                b'/' if i > start + 1 && self.token_ends_at(i + 1) => {
                    self.pos = i + 1;
                    self.push(TokenKind::Slashed, start, self.pos);
                    return true;
                }
                _ => i += 1,
            }
        }
        false
    }

    fn word(&mut self, start: usize) -> Result<(), QueryError> {
        if let Some(head) = self.filter_head(start)? {
            return self.filter(start, head);
        }
        let rest = &self.src[start..];
        let end = start + rest.find(char::is_whitespace).unwrap_or(rest.len());
        let keyword = match &self.src[start..end] {
            "OR" | "or" => Some(TokenKind::Or),
            "AND" | "and" => Some(TokenKind::And),
            "NOT" | "not" => Some(TokenKind::Not),
            _ => None,
        };
        match keyword {
            Some(kind) => self.push(kind, start, end),
            None => {
                let word_end = self.closing_parens_start(start, end);
                self.push(TokenKind::Word, start, word_end);
                self.push_closing_parens(word_end, end);
            }
        }
        self.pos = end;
        Ok(())
    }

    fn filter(&mut self, start: usize, head: FilterHead) -> Result<(), QueryError> {
        let FilterHead {
            negated,
            field,
            name,
            value_pos,
        } = head;
        let (value, word_end, end, value_verbatim) = match self.src[value_pos..].chars().next() {
            Some('"' | '\'') => {
                let (value, end) = quoted(self.src, value_pos)?;
                (value, end, end, false)
            }
            _ => {
                let tail = &self.src[value_pos..];
                let end = value_pos + tail.find(char::is_whitespace).unwrap_or(tail.len());
                let word_end = self.closing_parens_start(value_pos, end);
                (
                    self.src[value_pos..word_end].to_owned(),
                    word_end,
                    end,
                    true,
                )
            }
        };
        if value.is_empty() {
            return Err(QueryError::new(
                value_pos,
                format!("the filter {name}: needs a value"),
            ));
        }
        self.push(
            TokenKind::Filter {
                negated,
                field,
                value,
                value_pos,
                value_verbatim,
            },
            start,
            word_end,
        );
        self.push_closing_parens(word_end, end);
        self.pos = end;
        Ok(())
    }

    /// Where the trailing `)` that close open groups begin in the word `start..end`. The
    /// word's own parentheses keep theirs: `foo()` stays a word, `(foo)` is a group.
    fn closing_parens_start(&self, start: usize, end: usize) -> usize {
        let text = &self.src[start..end];
        let excess = text
            .matches(')')
            .count()
            .saturating_sub(text.matches('(').count());
        let mut budget = excess.min(self.depth);
        let mut word_end = end;
        while budget > 0 && word_end > start && self.src[..word_end].ends_with(')') {
            word_end -= 1;
            budget -= 1;
        }
        word_end
    }

    fn push_closing_parens(&mut self, from: usize, to: usize) {
        for at in from..to {
            self.depth -= 1;
            self.push(TokenKind::RParen, at, at + 1);
        }
    }

    /// Recognises `field:` or `-field:` with a known field. Unknown fields are plain words
    /// (`http://x` is a search for that text); fields Sourcegraph has but monitors do not
    /// are refused rather than searched for as text.
    fn filter_head(&self, start: usize) -> Result<Option<FilterHead>, QueryError> {
        let negated = self.src[start..].starts_with('-');
        let name_start = start + usize::from(negated);
        let name_len = self.src[name_start..]
            .bytes()
            .take_while(u8::is_ascii_alphabetic)
            .count();
        let colon = name_start + name_len;
        if name_len == 0 || self.src.as_bytes().get(colon) != Some(&b':') {
            return Ok(None);
        }
        let name = &self.src[name_start..colon];
        let Some(field) = Field::lookup(name) else {
            if UNSUPPORTED_FILTERS.contains(&name.to_ascii_lowercase().as_str()) {
                return Err(QueryError::new(
                    start,
                    format!("the filter {name}: is not supported by code monitors"),
                ));
            }
            return Ok(None);
        };
        if negated && !field.negatable() {
            return Err(QueryError::new(
                start,
                format!("the filter {name}: cannot be negated"),
            ));
        }
        Ok(Some(FilterHead {
            negated,
            field,
            name: name.to_owned(),
            value_pos: colon + 1,
        }))
    }
}

struct FilterHead {
    negated: bool,
    field: Field,
    name: String,
    value_pos: usize,
}

/// A string between matching quotes starting at `start`; `\"`, `\'` and `\\` are escapes,
/// any other backslash is kept as typed (so `"\d"` stays a backslash and a `d`).
fn quoted(src: &str, start: usize) -> Result<(String, usize), QueryError> {
    let quote = src.as_bytes()[start];
    let mut out = String::new();
    let mut chars = src[start + 1..].char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some((_, e)) if e == '\\' || e == '"' || e == '\'' => out.push(e),
                Some((_, e)) => {
                    out.push('\\');
                    out.push(e);
                }
                None => break,
            },
            c if c as u32 == u32::from(quote) => return Ok((out, start + 1 + i + 1)),
            c => out.push(c),
        }
    }
    Err(QueryError::new(
        start,
        "unterminated quoted string".to_owned(),
    ))
}
