//! The query language: the subset of Sourcegraph's search syntax that code monitors use.
//!
//! - `type:diff` (match added and removed lines) or `type:commit` (match the message), required
//!   in every OR branch;
//! - `repo:` / `-repo:`, `file:` / `-file:`, `author:`, `committer:`, `message:` (each a regular
//!   expression; `-` negates), `before:` / `after:` (author date);
//! - `case:yes` (case-insensitive by default), `patterntype:literal|regexp` (literal by
//!   default; `/.../` is a regex and `"..."` a literal in either mode);
//! - juxtaposition or `AND` between terms, `OR` between them, parentheses.
//!
//! A query is parsed into a tree, Sourcegraph's hoisting heuristic is applied, and the tree is
//! expanded into OR branches (`Branch`), each an AND of compiled predicates. Every regular
//! expression is compiled with size limits, and the `regex` crate matches in linear time, so
//! no pattern can hang a search or exhaust memory.

mod date;
mod lexer;
mod parser;

use std::fmt;

use regex::bytes::{Regex, RegexBuilder};

pub(crate) use date::DateBound;
use lexer::Field;
use parser::{Leaf, LeafKind, PatternSource, PatternSyntax};

/// The longest query accepted, in bytes.
pub const MAX_QUERY_BYTES: usize = 8 * 1024;
/// Limit on a compiled regex program, per regex.
const REGEX_SIZE_LIMIT: usize = 2 << 20;
/// Limit on the lazy DFA cache of one regex; past it the engine clears the cache and goes on
/// (or falls back to a slower engine), still in linear time.
const REGEX_DFA_SIZE_LIMIT: usize = 2 << 20;
const REGEX_NEST_LIMIT: u32 = 100;

/// A query was refused: where (byte offset into the query) and why.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{reason} (at byte {position})")]
pub struct QueryError {
    pub position: usize,
    pub reason: String,
}

impl QueryError {
    pub(crate) fn new(position: usize, reason: String) -> QueryError {
        QueryError { position, reason }
    }
}

/// What a branch of the query matches, and so which kind of result it produces.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ResultKind {
    /// `type:diff`: added and removed lines.
    Diff,
    /// `type:commit`: the commit message.
    Commit,
}

/// A parsed, validated query, ready to search with.
#[derive(Clone)]
pub struct Query {
    source: String,
    branches: Vec<Branch>,
}

impl fmt::Debug for Query {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Query")
            .field("source", &self.source)
            .field("branches", &self.branches.len())
            .finish()
    }
}

/// Parses and validates a query. Errors carry the byte offset of the offending term.
pub fn parse_query(source: &str) -> Result<Query, QueryError> {
    if source.len() > MAX_QUERY_BYTES {
        return Err(QueryError::new(
            MAX_QUERY_BYTES,
            format!("the query is longer than {MAX_QUERY_BYTES} bytes"),
        ));
    }
    let tokens = lexer::tokenize(source)?;
    if tokens.is_empty() {
        return Err(QueryError::new(
            0,
            "the query is empty; it needs at least type:diff or type:commit".to_owned(),
        ));
    }
    let options = Options::from_tokens(&tokens)?;
    let mut expr = parser::parse(source, &tokens)?;
    // Hoisting reinterprets a flat `filters a OR b` query; explicit parentheses say what the
    // user meant, so they are left alone.
    if !tokens.iter().any(|t| t.kind == lexer::TokenKind::LParen) {
        expr = parser::hoist(expr);
    }
    let branches = parser::dnf(&expr)?
        .into_iter()
        .map(|leaves| Branch::build(&leaves, &options, parser::first_pos(&expr)))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Query {
        source: source.to_owned(),
        branches,
    })
}

impl Query {
    /// The query as the user wrote it.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// Whether any branch can match in the repository called `name` (its `repo:` filters
    /// allow it). A scheduler can skip repositories for which this is false.
    pub fn may_match_repo(&self, name: &str) -> bool {
        self.branches.iter().any(|b| b.matches_repo(name))
    }

    /// The kinds of results this query produces.
    pub fn result_kinds(&self) -> Vec<ResultKind> {
        let mut kinds: Vec<ResultKind> = Vec::new();
        for branch in &self.branches {
            if !kinds.contains(&branch.kind) {
                kinds.push(branch.kind);
            }
        }
        kinds
    }

    pub(crate) fn branches(&self) -> &[Branch] {
        &self.branches
    }
}

/// Query-wide settings: they apply wherever they appear.
struct Options {
    case_sensitive: bool,
    regex_by_default: bool,
}

impl Options {
    fn from_tokens(tokens: &[lexer::Token]) -> Result<Options, QueryError> {
        let mut case: Option<(bool, &str)> = None;
        let mut pattern_type: Option<(bool, &str)> = None;
        for token in tokens {
            let lexer::TokenKind::Filter {
                field,
                value,
                value_pos,
                ..
            } = &token.kind
            else {
                continue;
            };
            let lower = value.to_ascii_lowercase();
            let (slot, parsed) = match field {
                Field::Case => (
                    &mut case,
                    match lower.as_str() {
                        "yes" => true,
                        "no" => false,
                        _ => {
                            return Err(QueryError::new(
                                *value_pos,
                                "case: must be yes or no".to_owned(),
                            ));
                        }
                    },
                ),
                Field::PatternType => (
                    &mut pattern_type,
                    match lower.as_str() {
                        "literal" | "standard" | "keyword" => false,
                        "regexp" | "regex" => true,
                        _ => {
                            return Err(QueryError::new(
                                *value_pos,
                                "patterntype: must be literal or regexp".to_owned(),
                            ));
                        }
                    },
                ),
                _ => continue,
            };
            if let Some((previous, _)) = *slot
                && previous != parsed
            {
                return Err(QueryError::new(
                    token.pos,
                    "conflicting values for the same setting".to_owned(),
                ));
            }
            *slot = Some((parsed, value));
        }
        Ok(Options {
            case_sensitive: case.is_some_and(|(yes, _)| yes),
            regex_by_default: pattern_type.is_some_and(|(regex, _)| regex),
        })
    }
}

/// A regex filter; `negated` ones must not match.
#[derive(Clone, Debug)]
pub(crate) struct Filter {
    pub regex: Regex,
    pub negated: bool,
}

impl Filter {
    /// Positive filters must match one of `subjects`, negated ones none of them.
    pub(crate) fn accepts(&self, subjects: &[&[u8]]) -> bool {
        subjects.iter().any(|s| self.regex.is_match(s)) != self.negated
    }
}

/// One OR branch of a query: everything in it must hold.
#[derive(Clone, Debug)]
pub(crate) struct Branch {
    pub kind: ResultKind,
    pub repo: Vec<Filter>,
    pub file: Vec<Filter>,
    pub author: Vec<Filter>,
    pub committer: Vec<Filter>,
    pub message: Vec<Filter>,
    pub before: Vec<DateBound>,
    pub after: Vec<DateBound>,
    /// Patterns, all of which must match (lines for diffs, the message for commits).
    pub patterns: Vec<Regex>,
}

impl Branch {
    fn build(leaves: &[Leaf], options: &Options, query_pos: usize) -> Result<Branch, QueryError> {
        let mut kind: Option<ResultKind> = None;
        let mut branch = Branch {
            kind: ResultKind::Diff,
            repo: Vec::new(),
            file: Vec::new(),
            author: Vec::new(),
            committer: Vec::new(),
            message: Vec::new(),
            before: Vec::new(),
            after: Vec::new(),
            patterns: Vec::new(),
        };
        for leaf in leaves {
            match &leaf.kind {
                LeafKind::Pattern(source) => branch
                    .patterns
                    .push(compile_pattern(source, leaf.pos, options)?),
                LeafKind::Filter {
                    negated,
                    field,
                    value,
                    value_pos,
                    value_verbatim,
                } => {
                    let filter = || -> Result<Filter, QueryError> {
                        let at = value_verbatim.then_some(*value_pos);
                        let regex = compile(value, options.case_sensitive, at, *value_pos)?;
                        Ok(Filter {
                            regex,
                            negated: *negated,
                        })
                    };
                    match field {
                        Field::Type => {
                            let this = match value.to_ascii_lowercase().as_str() {
                                "diff" => ResultKind::Diff,
                                "commit" => ResultKind::Commit,
                                _ => {
                                    return Err(QueryError::new(
                                        *value_pos,
                                        "code monitors need type:diff or type:commit".to_owned(),
                                    ));
                                }
                            };
                            if kind.is_some_and(|k| k != this) {
                                return Err(QueryError::new(leaf.pos, "type:diff and type:commit in the same branch; separate them with OR".to_owned()));
                            }
                            kind = Some(this);
                        }
                        Field::Repo => branch.repo.push(filter()?),
                        Field::File => branch.file.push(filter()?),
                        Field::Author => branch.author.push(filter()?),
                        Field::Committer => branch.committer.push(filter()?),
                        Field::Message => branch.message.push(filter()?),
                        Field::Before => branch.before.push(parse_date(value, *value_pos)?),
                        Field::After => branch.after.push(parse_date(value, *value_pos)?),
                        Field::Case | Field::PatternType => {}
                    }
                }
            }
        }
        let Some(kind) = kind else {
            let pos = leaves.first().map_or(query_pos, |l| l.pos);
            return Err(QueryError::new(
                pos,
                "all branches of the query must be type:diff or type:commit".to_owned(),
            ));
        };
        branch.kind = kind;
        Ok(branch)
    }

    pub(crate) fn matches_repo(&self, name: &str) -> bool {
        self.repo.iter().all(|f| f.accepts(&[name.as_bytes()]))
    }

    /// Whether the file filters let a file with these paths through (`None` is `/dev/null`).
    pub(crate) fn accepts_file(&self, old: Option<&[u8]>, new: Option<&[u8]>) -> bool {
        let paths: Vec<&[u8]> = old.into_iter().chain(new).collect();
        self.file.iter().all(|f| f.accepts(&paths))
    }
}

fn parse_date(value: &str, pos: usize) -> Result<DateBound, QueryError> {
    date::parse(value).map_err(|reason| QueryError::new(pos, reason))
}

fn compile_pattern(
    source: &PatternSource,
    pos: usize,
    options: &Options,
) -> Result<Regex, QueryError> {
    if source.text.is_empty() {
        return Err(QueryError::new(pos, "empty pattern".to_owned()));
    }
    let is_regex = match source.syntax {
        PatternSyntax::Regex => true,
        PatternSyntax::Literal => false,
        PatternSyntax::Bare => options.regex_by_default,
    };
    if is_regex {
        compile(
            &source.text,
            options.case_sensitive,
            source.verbatim_at,
            pos,
        )
    } else {
        compile(
            &regex::escape(&source.text),
            options.case_sensitive,
            None,
            pos,
        )
    }
}

/// Compiles a regular expression over bytes, with the size limits. `verbatim_at` is where the
/// pattern's text starts in the query, when it is a verbatim slice of it: syntax errors then
/// point at the exact byte; otherwise at `pos`, the start of the term.
fn compile(
    pattern: &str,
    case_sensitive: bool,
    verbatim_at: Option<usize>,
    pos: usize,
) -> Result<Regex, QueryError> {
    let at = |offset: usize| verbatim_at.map_or(pos, |start| start + offset);
    regex_syntax::ParserBuilder::new()
        .case_insensitive(!case_sensitive)
        .multi_line(true)
        .utf8(false)
        .nest_limit(REGEX_NEST_LIMIT)
        .build()
        .parse(pattern)
        .map_err(|err| {
            let (offset, reason) = match &err {
                regex_syntax::Error::Parse(e) => (e.span().start.offset, e.kind().to_string()),
                regex_syntax::Error::Translate(e) => (e.span().start.offset, e.kind().to_string()),
                other => (0, other.to_string()),
            };
            QueryError::new(at(offset), format!("invalid regular expression: {reason}"))
        })?;
    RegexBuilder::new(pattern)
        .case_insensitive(!case_sensitive)
        .multi_line(true)
        .nest_limit(REGEX_NEST_LIMIT)
        .size_limit(REGEX_SIZE_LIMIT)
        .dfa_size_limit(REGEX_DFA_SIZE_LIMIT)
        .build()
        .map_err(|err| match err {
            regex::Error::CompiledTooBig(limit) => QueryError::new(
                pos,
                format!("the regular expression is too large (its compiled form exceeds {limit} bytes); simplify it"),
            ),
            other => QueryError::new(pos, format!("invalid regular expression: {other}")),
        })
}
