//! What a search reports: Sourcegraph's code monitor result, ready to put in a notification.

use serde::{Deserialize, Serialize};

/// A `[start, end)` range of UTF-8 byte offsets into a result's `diff` or `message`.
/// Serializes as `[start, end]`, as in Sourcegraph's payloads.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(into = "[usize; 2]", from = "[usize; 2]")]
pub struct ByteRange {
    pub start: usize,
    pub end: usize,
}

impl From<ByteRange> for [usize; 2] {
    fn from(r: ByteRange) -> [usize; 2] {
        [r.start, r.end]
    }
}

impl From<[usize; 2]> for ByteRange {
    fn from([start, end]: [usize; 2]) -> ByteRange {
        ByteRange { start, end }
    }
}

/// One matching commit, shaped like an entry of `results` in Sourcegraph's
/// `code_monitor:notification` webhook payload.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MatchResult {
    /// The repository's name, as registered.
    pub repository: String,
    /// The full commit id.
    pub commit: String,
    #[serde(flatten)]
    pub matched: Matched,
}

/// The matched text and ranges: a diff for `type:diff`, the message for `type:commit`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Matched {
    Diff {
        diff: String,
        #[serde(
            rename = "matchedDiffRanges",
            default,
            skip_serializing_if = "Vec::is_empty"
        )]
        ranges: Vec<ByteRange>,
    },
    Message {
        message: String,
        #[serde(
            rename = "matchedMessageRanges",
            default,
            skip_serializing_if = "Vec::is_empty"
        )]
        ranges: Vec<ByteRange>,
    },
}

impl MatchResult {
    /// The matched text: the formatted diff or the message.
    pub fn text(&self) -> &str {
        match &self.matched {
            Matched::Diff { diff, .. } => diff,
            Matched::Message { message, .. } => message,
        }
    }

    pub fn ranges(&self) -> &[ByteRange] {
        match &self.matched {
            Matched::Diff { ranges, .. } | Matched::Message { ranges, .. } => ranges,
        }
    }

    /// The highlighted substrings, in order.
    pub fn highlighted(&self) -> impl Iterator<Item = &str> {
        let text = self.text();
        self.ranges()
            .iter()
            .filter_map(move |r| text.get(r.start..r.end))
    }
}
