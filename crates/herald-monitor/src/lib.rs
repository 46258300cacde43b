//! Code monitors' git and search core: mirrors, the query language, one shared pass over new
//! commits, and matches formatted exactly as Sourcegraph's code monitors format them.
//!
//! Layout:
//! - [`query`]: the Sourcegraph subset monitors use — `type:diff|commit`, `repo:`, `file:`,
//!   `author:`, `message:`, `before:`/`after:`, `case:yes`, `patterntype:`, AND/OR — parsed by
//!   [`parse_query`] into OR branches of size-limited regexes, or a [`QueryError`] with the byte
//!   position and the reason.
//! - [`source`]: which clone URLs and paths may be mirrored ([`SourcePolicy::check`], pure, for
//!   the API) and the check again before each fetch ([`SourcePolicy::pin`]: the host resolved
//!   through the address guard, local paths' real paths under a configured root).
//! - [`mirror`]: bare mirrors under the data directory ([`Mirror::ensure`]), `git fetch --prune`
//!   with a timeout ([`Mirror::fetch`]), branch [`Heads`].
//! - `fetch` (private): the pinned git command of a fetch (redirects off, one protocol, no
//!   configuration but ours) and credentials through `GIT_ASKPASS`, never in arguments or files.
//! - [`heads`]: [`Heads`] (ref → commit id) and [`NewRange`], the commits new since the heads
//!   last searched.
//! - [`search`]: [`search_new_commits`]: one pass over a range's diffs, shared by every
//!   monitor on the repository (`git rev-list`, then `git log -p` over the listed commits,
//!   split into contiguous chunks on parallel processes when the range is large).
//! - `diff` (private): the streaming parser of that pass's output.
//! - `matcher` (private): a query branch against a commit's header, message and file diffs.
//! - `format` (private): Sourcegraph's diff and message formatting, with byte ranges.
//! - [`result`]: [`MatchResult`], one entry of a `code_monitor:notification`'s `results`.
//! - `git` (private): running the system `git` in its own process group with a deadline.
//!
//! Invariants (upheld together with the caller, which stores the state):
//! - **History before a monitor's creation is never reported.** At creation the caller
//!   snapshots the repository's [`Heads`]; every search covers
//!   [`NewRange::between`]`(last searched heads, current heads)`, which excludes everything
//!   reachable from the last heads.
//! - **Each commit is reported at most once per monitor.** After a successful search the caller
//!   records the new heads as searched; the next range excludes all their history, so a
//!   commit cannot reappear — not even when a branch is force-pushed back to it, since a
//!   commit in the range must be unreachable from every head searched before. A failed search
//!   reports nothing (no partial results), so the caller simply retries the same range.
//! - Matching never panics on input and never runs away: regexes are size-limited and run in
//!   linear time; git runs with a timeout; invalid UTF-8 is replaced, never rejected.
//!
//! Decisions:
//! - The system `git` CLI (not gix), streamed, with the user's git configuration ignored for
//!   the searching pass so nothing (external diff, `diff.noprefix`, signatures) can change the
//!   text parsed. Diff generation (inflating blobs, xdiff) is most of the cost and is the same
//!   work `git log -G` does; running chunks on several cores is what makes the pass faster.
//! - Merge commits have no diff (`--diff-merges=off`), as in Sourcegraph (whose `git diff-tree`
//!   prints nothing for merges) and in `git log -G`: a merge's changes are searched on the
//!   commits that made them, which are new commits of the range too. `type:commit` still
//!   matches merge messages.
//! - Renames are detected (`-M`, as `git log` does by default), so a renamed file shows as
//!   `old new` with only its changed lines, where Sourcegraph (no `-M`) shows a deletion and an
//!   addition. Binary files have no lines, so only `file:` can match them.
//! - Where Sourcegraph's formatting has slips, this crate is exact instead: ranges are UTF-8
//!   byte offsets throughout (Sourcegraph adds rune offsets within a line to byte offsets of
//!   the line), path highlights account for the `\ ` escapes, and lines dropped past a hunk's
//!   line cap still count towards the next hunk's start line.

pub mod heads;
pub mod mirror;
pub mod query;
pub mod result;
pub mod search;
pub mod source;

mod diff;
mod fetch;
mod format;
mod git;
mod matcher;

pub use git::GitError;
pub use heads::{Heads, NewRange};
pub use mirror::{Mirror, MirrorError};
pub use query::{Query, QueryError, ResultKind, parse_query};
pub use result::{ByteRange, MatchResult, Matched};
pub use search::{MonitorMatches, SearchError, SearchOptions, SearchOutcome, search_new_commits};
pub use source::{Source, SourcePolicy, SourceRefused};
