//! Tokens → expression tree → disjunctive normal form.
//!
//! Grammar (AND binds tighter than OR; juxtaposition is AND):
//! ```text
//! or   := and ("OR" and)*
//! and  := unit (["AND"] unit)*
//! unit := "(" or ")" | filter | pattern
//! ```
//! Adjacent bare words are one pattern, whitespace included as typed (`fix bug` searches for
//! the text "fix bug"), as in Sourcegraph's literal search.

use super::QueryError;
use super::lexer::{Field, Token, TokenKind};

/// The most OR branches a query may expand to; `(a OR b) (c OR d) ...` grows exponentially.
const MAX_BRANCHES: usize = 64;

#[derive(Clone, Debug)]
pub(super) enum Expr {
    And(Vec<Expr>),
    Or(Vec<Expr>),
    Leaf(Leaf),
}

#[derive(Clone, Debug)]
pub(super) struct Leaf {
    pub pos: usize,
    pub kind: LeafKind,
}

#[derive(Clone, Debug)]
pub(super) enum LeafKind {
    Pattern(PatternSource),
    Filter {
        negated: bool,
        field: Field,
        value: String,
        value_pos: usize,
        value_verbatim: bool,
    },
}

#[derive(Clone, Debug)]
pub(super) struct PatternSource {
    pub text: String,
    pub syntax: PatternSyntax,
    /// Byte offset of `text` in the query, when `text` is a verbatim slice of it (so a regex
    /// error's offset inside the pattern maps onto the query).
    pub verbatim_at: Option<usize>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum PatternSyntax {
    /// Literal unless `patterntype:regexp`.
    Bare,
    Literal,
    Regex,
}

impl Leaf {
    fn is_filter(&self) -> bool {
        matches!(self.kind, LeafKind::Filter { .. })
    }
}

pub(super) fn parse(src: &str, tokens: &[Token]) -> Result<Expr, QueryError> {
    let mut parser = Parser {
        src,
        tokens,
        next: 0,
    };
    let expr = parser.or()?;
    if let Some(token) = parser.peek() {
        return Err(QueryError::new(token.pos, "unexpected token".to_owned()));
    }
    Ok(expr)
}

struct Parser<'a> {
    src: &'a str,
    tokens: &'a [Token],
    next: usize,
}

impl<'a> Parser<'a> {
    fn peek(&self) -> Option<&'a Token> {
        self.tokens.get(self.next)
    }

    fn end_pos(&self) -> usize {
        self.src.len()
    }

    fn or(&mut self) -> Result<Expr, QueryError> {
        let mut operands = vec![self.and()?];
        while let Some(Token {
            kind: TokenKind::Or,
            pos,
            ..
        }) = self.peek()
        {
            self.next += 1;
            if matches!(
                self.peek().map(|t| &t.kind),
                None | Some(TokenKind::RParen | TokenKind::Or)
            ) {
                return Err(QueryError::new(
                    *pos,
                    "OR needs a search term on both sides".to_owned(),
                ));
            }
            operands.push(self.and()?);
        }
        Ok(if operands.len() == 1 {
            operands.remove(0)
        } else {
            Expr::Or(operands)
        })
    }

    fn and(&mut self) -> Result<Expr, QueryError> {
        let mut units = Vec::new();
        while let Some(token) = self.peek() {
            match token.kind {
                TokenKind::Or | TokenKind::RParen => break,
                TokenKind::And => {
                    self.next += 1;
                    let dangling = matches!(
                        self.peek().map(|t| &t.kind),
                        None | Some(TokenKind::RParen | TokenKind::Or | TokenKind::And)
                    );
                    if units.is_empty() || dangling {
                        return Err(QueryError::new(
                            token.pos,
                            "AND needs a search term on both sides".to_owned(),
                        ));
                    }
                }
                _ => units.push(self.unit()?),
            }
        }
        if units.is_empty() {
            let pos = self.peek().map_or(self.end_pos(), |t| t.pos);
            return Err(QueryError::new(
                pos,
                "expected a search term or filter".to_owned(),
            ));
        }
        Ok(if units.len() == 1 {
            units.remove(0)
        } else {
            Expr::And(units)
        })
    }

    fn unit(&mut self) -> Result<Expr, QueryError> {
        let Some(token) = self.peek() else {
            return Err(QueryError::new(
                self.end_pos(),
                "expected a search term or filter".to_owned(),
            ));
        };
        self.next += 1;
        let leaf = |kind| {
            Ok(Expr::Leaf(Leaf {
                pos: token.pos,
                kind,
            }))
        };
        match &token.kind {
            TokenKind::LParen => {
                let inner = self.or()?;
                match self.peek() {
                    Some(Token {
                        kind: TokenKind::RParen,
                        ..
                    }) => {
                        self.next += 1;
                        Ok(inner)
                    }
                    _ => Err(QueryError::new(
                        token.pos,
                        "unclosed parenthesis".to_owned(),
                    )),
                }
            }
            TokenKind::Not => Err(QueryError::new(
                token.pos,
                "NOT is not supported; exclude with -repo:, -file:, -author: or -message:"
                    .to_owned(),
            )),
            TokenKind::Word => {
                let mut end = token.end;
                while let Some(Token {
                    kind: TokenKind::Word,
                    end: next_end,
                    ..
                }) = self.peek()
                {
                    end = *next_end;
                    self.next += 1;
                }
                leaf(LeafKind::Pattern(PatternSource {
                    text: self.src[token.pos..end].to_owned(),
                    syntax: PatternSyntax::Bare,
                    verbatim_at: Some(token.pos),
                }))
            }
            TokenKind::Quoted(text) => leaf(LeafKind::Pattern(PatternSource {
                text: text.clone(),
                syntax: PatternSyntax::Literal,
                verbatim_at: None,
            })),
            TokenKind::Slashed => leaf(LeafKind::Pattern(PatternSource {
                text: self.src[token.pos + 1..token.end - 1].to_owned(),
                syntax: PatternSyntax::Regex,
                verbatim_at: Some(token.pos + 1),
            })),
            TokenKind::Filter {
                negated,
                field,
                value,
                value_pos,
                value_verbatim,
            } => leaf(LeafKind::Filter {
                negated: *negated,
                field: *field,
                value: value.clone(),
                value_pos: *value_pos,
                value_verbatim: *value_verbatim,
            }),
            TokenKind::And | TokenKind::Or | TokenKind::RParen => Err(QueryError::new(
                token.pos,
                "expected a search term or filter".to_owned(),
            )),
        }
    }
}

/// Sourcegraph's hoisting heuristic: in `repo:x type:diff foo OR bar`, the filters at the
/// start of the first OR operand (and at the end of the last) scope the whole query, giving
/// `repo:x type:diff (foo OR bar)` instead of `(repo:x type:diff foo) OR bar`. It applies
/// only when every other operand is made of patterns alone.
pub(super) fn hoist(expr: Expr) -> Expr {
    let Expr::Or(operands) = expr else {
        return expr;
    };
    let n = operands.len();
    let units = |e: &Expr| -> Vec<Expr> {
        match e {
            Expr::And(units) => units.clone(),
            other => vec![other.clone()],
        }
    };
    let first = units(&operands[0]);
    let last = units(&operands[n - 1]);
    let leading = first.iter().take_while(|u| is_filter(u)).count();
    let trailing = last.iter().rev().take_while(|u| is_filter(u)).count();
    let middle_clean = operands[1..n - 1].iter().all(|e| !contains_filter(e));
    let first_rest = &first[leading..];
    let last_rest = &last[..last.len() - trailing];
    let rest_clean = |rest: &[Expr]| !rest.is_empty() && rest.iter().all(|u| !contains_filter(u));
    if leading + trailing == 0 || !middle_clean || !rest_clean(first_rest) || !rest_clean(last_rest)
    {
        return Expr::Or(operands);
    }
    let and = |mut units: Vec<Expr>| {
        if units.len() == 1 {
            units.remove(0)
        } else {
            Expr::And(units)
        }
    };
    let mut new_operands = Vec::with_capacity(n);
    new_operands.push(and(first_rest.to_vec()));
    new_operands.extend(operands[1..n - 1].iter().cloned());
    new_operands.push(and(last_rest.to_vec()));
    let mut hoisted: Vec<Expr> = first[..leading].to_vec();
    hoisted.push(Expr::Or(new_operands));
    hoisted.extend(last[last.len() - trailing..].iter().cloned());
    Expr::And(hoisted)
}

fn is_filter(e: &Expr) -> bool {
    matches!(e, Expr::Leaf(leaf) if leaf.is_filter())
}

fn contains_filter(e: &Expr) -> bool {
    match e {
        Expr::Leaf(leaf) => leaf.is_filter(),
        Expr::And(xs) | Expr::Or(xs) => xs.iter().any(contains_filter),
    }
}

/// Expands the tree into OR branches, each an AND of leaves.
pub(super) fn dnf(expr: &Expr) -> Result<Vec<Vec<Leaf>>, QueryError> {
    match expr {
        Expr::Leaf(leaf) => Ok(vec![vec![leaf.clone()]]),
        Expr::Or(operands) => {
            let mut branches = Vec::new();
            for operand in operands {
                branches.extend(dnf(operand)?);
                check_size(branches.len(), operand)?;
            }
            Ok(branches)
        }
        Expr::And(operands) => {
            let mut branches: Vec<Vec<Leaf>> = vec![Vec::new()];
            for operand in operands {
                let choices = dnf(operand)?;
                check_size(branches.len().saturating_mul(choices.len()), operand)?;
                branches = branches
                    .iter()
                    .flat_map(|prefix| {
                        choices
                            .iter()
                            .map(move |choice| prefix.iter().chain(choice).cloned().collect())
                    })
                    .collect();
            }
            Ok(branches)
        }
    }
}

fn check_size(branches: usize, at: &Expr) -> Result<(), QueryError> {
    if branches > MAX_BRANCHES {
        return Err(QueryError::new(
            first_pos(at),
            format!("the query expands to more than {MAX_BRANCHES} OR branches; simplify it"),
        ));
    }
    Ok(())
}

pub(super) fn first_pos(e: &Expr) -> usize {
    match e {
        Expr::Leaf(leaf) => leaf.pos,
        Expr::And(xs) | Expr::Or(xs) => xs.first().map_or(0, first_pos),
    }
}
