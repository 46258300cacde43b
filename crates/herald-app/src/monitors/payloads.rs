//! What a monitor's actions are sent.
//!
//! - `code_monitor:notification` (seed 000): built by herald-catalogue's
//!   [`code_monitor_notification`], the one builder of that body; search
//!   results are converted to its [`MonitorResult`]s here.
//! - `code_monitor:slack`: a Slack incoming-webhook message in Block Kit: the
//!   monitor's description, the number of new matches and which part of the
//!   run's messages this is, up to [`SLACK_RESULTS_PER_MESSAGE`] results each
//!   as a code block of at most [`SLACK_LINES`] lines and [`SLACK_CODE_BYTES`]
//!   bytes, and a link to the monitor.

use herald_catalogue::{MonitorResult, code_monitor_notification};
use herald_monitor::{MatchResult, Matched};
use serde::Serialize;

/// The query of a test notification, as Sourcegraph's Test button sends it.
pub const TEST_QUERY: &str = "test query";
/// Results in one Slack message: Slack takes at most 50 blocks, and a message
/// has the summary, the link and two blocks per result.
pub const SLACK_RESULTS_PER_MESSAGE: usize = (SLACK_MAX_BLOCKS - 2) / 2;
const SLACK_MAX_BLOCKS: usize = 50;
/// Lines of a result's code block in a Slack message.
pub const SLACK_LINES: usize = 10;
/// Bytes of a result's code block (its text between the fences); Slack refuses
/// section texts over 3000 characters.
pub const SLACK_CODE_BYTES: usize = 2500;
const CUT_MARKER: &str = "\n...";

/// A search result as the notification payload carries it.
pub fn monitor_result(result: &MatchResult) -> MonitorResult {
    let ranges = result.ranges().iter().map(|r| r.start..r.end).collect();
    match &result.matched {
        Matched::Diff { diff, .. } => MonitorResult::Diff {
            repository: result.repository.clone(),
            commit: result.commit.clone(),
            diff: diff.clone(),
            matched_ranges: ranges,
        },
        Matched::Message { message, .. } => MonitorResult::Commit {
            repository: result.repository.clone(),
            commit: result.commit.clone(),
            message: message.clone(),
            matched_ranges: ranges,
        },
    }
}

/// The `code_monitor:notification` body; with `results` empty, `results` is
/// left out (the test notification, or an action that omits results).
pub fn notification(
    description: &str,
    monitor_url: &str,
    query: &str,
    results: &[MatchResult],
) -> Vec<u8> {
    let results: Vec<MonitorResult> = results.iter().map(monitor_result).collect();
    code_monitor_notification(description, monitor_url, query, &results)
}

#[derive(Serialize)]
struct SlackMessage {
    /// Shown in notifications and by clients that cannot render blocks.
    text: String,
    blocks: Vec<Block>,
}

#[derive(Serialize)]
struct Block {
    #[serde(rename = "type")]
    kind: &'static str,
    text: Text,
}

#[derive(Serialize)]
struct Text {
    #[serde(rename = "type")]
    kind: &'static str,
    text: String,
}

fn section(text: String) -> Block {
    Block {
        kind: "section",
        text: Text {
            kind: "mrkdwn",
            text,
        },
    }
}

/// Which of a run's messages of one kind a message is, 1-based.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Part {
    pub number: usize,
    pub of: usize,
}

impl Part {
    /// The one message of its kind.
    pub const ONLY: Part = Part { number: 1, of: 1 };

    /// How a message says which part it is; nothing when it is the only one.
    fn label(self) -> String {
        if self.of > 1 {
            format!(" (part {} of {})", self.number, self.of)
        } else {
            String::new()
        }
    }
}

/// The `code_monitor:slack` body for new matches. `matches` counts them all;
/// `results` are those this message shows (at most
/// [`SLACK_RESULTS_PER_MESSAGE`]; none for an action that omits results).
pub fn slack_message(
    description: &str,
    monitor_url: &str,
    matches: usize,
    results: &[MatchResult],
    part: Part,
) -> Vec<u8> {
    let counted = match matches {
        1 => "1 new match".to_owned(),
        n => format!("{n} new matches"),
    };
    let label = part.label();
    let mut blocks = vec![section(format!(
        "Code monitor *{}* found *{counted}*{label}.",
        escape(description)
    ))];
    for result in results.iter().take(SLACK_RESULTS_PER_MESSAGE) {
        let kind = match result.matched {
            Matched::Diff { .. } => "Diff",
            Matched::Message { .. } => "Message",
        };
        blocks.push(section(format!(
            "{kind} match in `{}` at `{}`",
            escape(&result.repository),
            short(&result.commit)
        )));
        blocks.push(section(code_block(result.text())));
    }
    blocks.push(section(link(monitor_url, "View the code monitor")));
    to_bytes(&SlackMessage {
        text: format!("Code monitor \"{description}\" found {counted}{label}."),
        blocks,
    })
}

/// The `code_monitor:slack` body of a test notification.
pub fn slack_test_message(description: &str, monitor_url: &str) -> Vec<u8> {
    to_bytes(&SlackMessage {
        text: format!("Test message for code monitor \"{description}\"."),
        blocks: vec![
            section(format!(
                "Test message for code monitor *{}*: its Slack action works.",
                escape(description)
            )),
            section(link(monitor_url, "View the code monitor")),
        ],
    })
}

fn to_bytes(message: &SlackMessage) -> Vec<u8> {
    // Strings only: serializing cannot fail.
    serde_json::to_vec(message).unwrap_or_default()
}

fn link(url: &str, label: &str) -> String {
    format!("<{}|{label}>", escape(url))
}

fn short(commit: &str) -> &str {
    commit.get(..7).unwrap_or(commit)
}

/// Slack's mrkdwn needs `&`, `<` and `>` escaped, in code blocks too.
fn escape_char(c: char, out: &mut String) {
    match c {
        '&' => out.push_str("&amp;"),
        '<' => out.push_str("&lt;"),
        '>' => out.push_str("&gt;"),
        other => out.push(other),
    }
}

fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        escape_char(c, &mut out);
    }
    out
}

/// The text as a code block of at most [`SLACK_LINES`] lines and
/// [`SLACK_CODE_BYTES`] bytes (escaped), cut at a character boundary and
/// ending in `...` when cut.
fn code_block(text: &str) -> String {
    let lines: Vec<&str> = text.lines().collect();
    let whole = escape(&lines.join("\n"));
    let body = if lines.len() <= SLACK_LINES && whole.len() <= SLACK_CODE_BYTES {
        whole
    } else {
        cut(&lines[..lines.len().min(SLACK_LINES)])
    };
    format!("```\n{body}\n```")
}

fn cut(lines: &[&str]) -> String {
    let budget = SLACK_CODE_BYTES - CUT_MARKER.len();
    let mut body = String::new();
    let mut escaped = String::new();
    'lines: for (i, line) in lines.iter().enumerate() {
        let newline = if i == 0 { "" } else { "\n" };
        if body.len() + newline.len() > budget {
            break;
        }
        body.push_str(newline);
        for c in line.chars() {
            escaped.clear();
            escape_char(c, &mut escaped);
            if body.len() + escaped.len() > budget {
                break 'lines;
            }
            body.push_str(&escaped);
        }
    }
    body.push_str(CUT_MARKER);
    body
}

#[cfg(test)]
mod tests {
    use super::*;
    use herald_monitor::ByteRange;

    fn diff_result(diff: &str) -> MatchResult {
        MatchResult {
            repository: "github.com/test/test".to_owned(),
            commit: "7815187511872asbasdfgasd".to_owned(),
            matched: Matched::Diff {
                diff: diff.to_owned(),
                ranges: vec![ByteRange { start: 0, end: 4 }],
            },
        }
    }

    fn blocks(body: &[u8]) -> Vec<String> {
        let value: serde_json::Value = serde_json::from_slice(body).unwrap();
        value["blocks"]
            .as_array()
            .unwrap()
            .iter()
            .map(|b| b["text"]["text"].as_str().unwrap().to_owned())
            .collect()
    }

    /// Seed 000's two results, as a search reports them.
    fn seed_results() -> Vec<MatchResult> {
        let seed = |matched| MatchResult {
            repository: "github.com/test/test".to_owned(),
            commit: "7815187511872asbasdfgasd".to_owned(),
            matched,
        };
        vec![
            seed(Matched::Diff {
                diff: "file1.go file2.go\n@ -97,5 +97,5 @ func Test() {\n leading context\n+matched added\n-matched removed\n trailing context\n".to_owned(),
                ranges: vec![ByteRange { start: 66, end: 73 }, ByteRange { start: 91, end: 98 }],
            }),
            seed(Matched::Message {
                message: "summary line\n\nsample\ncommit\nmessage\n".to_owned(),
                ranges: vec![ByteRange { start: 15, end: 19 }],
            }),
        ]
    }

    #[test]
    fn the_notification_is_seed_000_byte_for_byte() {
        let built = notification(
            "My test monitor",
            "https://sourcegraph.com/code-monitoring/Q29kZU1vbml0b3I6NDI=?utm_source=",
            "repo:camdentest -file:id_rsa.pub BEGIN",
            &seed_results(),
        );
        let catalogue = herald_catalogue::Catalogue::builtin();
        let example = catalogue
            .get(herald_catalogue::keys::CODE_MONITOR_NOTIFICATION)
            .unwrap();
        assert_eq!(
            String::from_utf8(built).unwrap(),
            String::from_utf8(example.example_bytes()).unwrap()
        );
        // The search's own serialization names the same fields, in the same order.
        let direct = serde_json::to_string(&seed_results()).unwrap();
        let via_catalogue: serde_json::Value =
            serde_json::from_slice(&example.example_bytes()).unwrap();
        assert_eq!(direct, via_catalogue["results"].to_string());
    }

    #[test]
    fn the_slack_message_is_the_catalogue_example_and_valid() {
        let built = slack_message(
            "My test monitor",
            "https://herald.example.com/api/v1/monitors/0190b8e2-7a4c-7d2e-9a51-3c1f0e6d2b7a",
            2,
            &seed_results(),
            Part::ONLY,
        );
        let catalogue = herald_catalogue::Catalogue::builtin();
        let key = herald_catalogue::keys::CODE_MONITOR_SLACK;
        let example = catalogue.get(key).unwrap().example_bytes();
        assert_eq!(
            String::from_utf8(built.clone()).unwrap(),
            String::from_utf8(example).unwrap()
        );
        let test = slack_test_message("My test monitor", "https://herald.example.com/m");
        for body in [built, test] {
            let value: serde_json::Value = serde_json::from_slice(&body).unwrap();
            assert_eq!(catalogue.validate(key, &value), Ok(()));
        }
    }

    #[test]
    fn a_short_result_is_shown_whole() {
        let text = code_block("a.go a.go\n@@ -1,1 +1,1 @@ \n+x < y && z\n");
        assert_eq!(
            text,
            "```\na.go a.go\n@@ -1,1 +1,1 @@ \n+x &lt; y &amp;&amp; z\n```"
        );
    }

    #[test]
    fn code_blocks_keep_ten_lines_at_most() {
        let long: String = (0..30).map(|i| format!("+line {i}\n")).collect();
        let text = code_block(&long);
        let body = text
            .strip_prefix("```\n")
            .unwrap()
            .strip_suffix("\n```")
            .unwrap();
        assert_eq!(
            body.lines().count(),
            SLACK_LINES + 1,
            "ten lines and the marker"
        );
        assert!(body.starts_with("+line 0\n") && body.ends_with("+line 9\n..."));
    }

    #[test]
    fn code_blocks_keep_2500_bytes_at_most_cut_on_a_character() {
        // Three-byte characters, and escapes that grow: no cut may split either.
        let line = "+漢<".repeat(2000);
        let text = code_block(&line);
        let body = text
            .strip_prefix("```\n")
            .unwrap()
            .strip_suffix("\n```")
            .unwrap();
        assert!(body.len() <= SLACK_CODE_BYTES, "{} bytes", body.len());
        assert!(
            body.len() > SLACK_CODE_BYTES - 10,
            "cut as late as it can: {} bytes",
            body.len()
        );
        let kept = body.strip_suffix(CUT_MARKER).unwrap();
        assert!(kept.ends_with("漢") || kept.ends_with("&lt;") || kept.ends_with('+'));
        assert!(!kept.contains("&lt&") && kept.split("&lt;").all(|part| !part.contains('<')));
    }

    #[test]
    fn a_part_of_several_says_which_and_fits_slacks_block_limit() {
        let results: Vec<MatchResult> = (0..SLACK_RESULTS_PER_MESSAGE)
            .map(|i| diff_result(&format!("+hit {i}\n")))
            .collect();
        let body = slack_message(
            "Secrets & keys",
            "https://herald.example.com/api/v1/monitors/1",
            60,
            &results,
            Part { number: 2, of: 3 },
        );
        let texts = blocks(&body);
        assert_eq!(texts.len(), SLACK_MAX_BLOCKS);
        assert_eq!(
            texts[0],
            "Code monitor *Secrets &amp; keys* found *60 new matches* (part 2 of 3)."
        );
        assert_eq!(
            texts[1],
            "Diff match in `github.com/test/test` at `7815187`"
        );
        assert_eq!(texts[2], "```\n+hit 0\n```");
        assert_eq!(texts[48], "```\n+hit 23\n```");
        assert_eq!(
            texts[49],
            "<https://herald.example.com/api/v1/monitors/1|View the code monitor>"
        );
        let value: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(
            value["text"],
            "Code monitor \"Secrets & keys\" found 60 new matches (part 2 of 3)."
        );
        let catalogue = herald_catalogue::Catalogue::builtin();
        let key = herald_catalogue::keys::CODE_MONITOR_SLACK;
        assert_eq!(catalogue.validate(key, &value), Ok(()));
    }

    #[test]
    fn without_results_a_message_only_counts() {
        let texts = blocks(&slack_message("m", "https://h/m", 1, &[], Part::ONLY));
        assert_eq!(
            texts,
            vec![
                "Code monitor *m* found *1 new match*.",
                "<https://h/m|View the code monitor>"
            ]
        );
    }
}
