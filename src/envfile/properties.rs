//! Property tests of the whole rewriter: parsing then rendering gives back the input byte for
//! byte, and `set` changes exactly the value it is asked to change, in every occurrence.

use super::*;
use proptest::prelude::*;

#[derive(Clone, Debug)]
enum Line {
    Blank(&'static str),
    Comment(String),
    Pair {
        lead: &'static str,
        export: &'static str,
        key: &'static str,
        before_eq: &'static str,
        after_eq: &'static str,
        value: String,
        trail: &'static str,
    },
}

/// Marks a line break inside a quoted value; replaced by the file's line ending.
const BREAK: &str = "\u{1}";

fn quoted_piece(double: bool) -> BoxedStrategy<String> {
    let plain = if double { "[ !#-\\[\\]-~é€]{1,4}" } else { "[ -&(-\\[\\]-~é€]{1,4}" };
    let escapes: &[&str] = if double {
        &["\\n", "\\t", "\\\"", "\\\\", "\\$", "\\x", "\\0101", "\\0", "'"]
    } else {
        &["\\'", "\\\\", "\\n", "\""]
    };
    prop_oneof![
        4 => plain.prop_map(String::from),
        2 => proptest::sample::select(escapes.to_vec()).prop_map(String::from),
        1 => Just(BREAK.to_owned()),
    ]
    .boxed()
}

fn value_token() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(String::new()),
        "[A-Za-z0-9_@%:/.,+=-][A-Za-z0-9_@#%:/.,+=$'\" \\\\-]{0,12}",
        prop::collection::vec(quoted_piece(false), 0..5).prop_map(|p| format!("'{}'", p.concat())),
        prop::collection::vec(quoted_piece(true), 0..5).prop_map(|p| format!("\"{}\"", p.concat())),
    ]
}

const KEYS: &[&str] = &["A", "B_1", "db.url", "X-Y", "_Z", "export", "JWT_KEYS"];

fn line() -> impl Strategy<Value = Line> {
    prop_oneof![
        1 => prop::sample::select(vec!["", "  ", "\t"]).prop_map(Line::Blank),
        1 => "[ \t]{0,2}#[ -~]{0,16}".prop_map(Line::Comment),
        4 => (
            prop::sample::select(vec!["", " "]),
            prop::sample::select(vec!["", "export ", "export\t"]),
            prop::sample::select(KEYS.to_vec()),
            prop::sample::select(vec!["", " "]),
            prop::sample::select(vec!["", " ", "\t"]),
            value_token(),
            prop::sample::select(vec!["", "  ", " # note", "\t# x"]),
        )
            .prop_map(|(lead, export, key, before_eq, after_eq, value, trail)| {
                // `export =` would make `export` a prefix with no key after it.
                let before_eq = if key == "export" && export.is_empty() { "" } else { before_eq };
                Line::Pair { lead, export, key, before_eq, after_eq, value, trail }
            }),
    ]
}

fn file_text() -> impl Strategy<Value = String> {
    (prop::collection::vec(line(), 0..12), any::<bool>(), any::<bool>(), prop::bool::weighted(0.1)).prop_map(
        |(lines, crlf, final_newline, bom)| {
            let eol = if crlf { "\r\n" } else { "\n" };
            let rendered: Vec<String> = lines
                .into_iter()
                .map(|line| match line {
                    Line::Blank(ws) => ws.to_owned(),
                    Line::Comment(text) => text,
                    Line::Pair { lead, export, key, before_eq, after_eq, value, trail } => {
                        format!("{lead}{export}{key}{before_eq}={after_eq}{value}{trail}")
                    }
                })
                .collect();
            let mut text = if bom { BOM.to_owned() } else { String::new() };
            text.push_str(&rendered.join(eol).replace(BREAK, eol));
            if final_newline && !rendered.is_empty() {
                text.push_str(eol);
            }
            text
        },
    )
}

fn new_value() -> impl Strategy<Value = String> {
    prop_oneof![
        "[ -~]{0,30}",
        "[ -~\n\t\r]{0,20}",
        "\\PC{0,12}",
        "[A-Za-z0-9+/=]{1,40}",
        Just(r#"[{"kty":"EC","crv":"P-256","x":"f83O","d":"jpsQ"}]"#.to_owned()),
        Just("it's \"$HOME\" # \\".to_owned()),
        Just("trailing\\".to_owned()),
    ]
}

fn non_key_raws(file: &EnvFile, key: &str) -> Vec<String> {
    file.entries.iter().filter(|e| e.key() != Some(key)).map(|e| e.raw.to_string()).collect()
}

/// (prefix, suffix) around the value of each entry of `key`.
fn frames(file: &EnvFile, key: &str) -> Vec<(String, String)> {
    file.entries
        .iter()
        .filter_map(|e| {
            let pair = e.pair.as_ref().filter(|_| e.key() == Some(key))?;
            Some((e.raw[..pair.value_start].to_owned(), e.raw[pair.value_end..].to_owned()))
        })
        .collect()
}

proptest! {
    // No persistence: failures are printed (generated data, never real secrets), and the
    // file would land beside the source.
    #![proptest_config(ProptestConfig {
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn parse_then_render_is_the_identity(text in file_text()) {
        let file = EnvFile::parse(&text, None).expect("generated files are valid");
        let out = file.render();
        prop_assert_eq!(out.as_str(), text.as_str());
    }

    #[test]
    fn set_changes_exactly_one_value(
        text in file_text(),
        key in prop::sample::select(vec!["A", "db.url", "export", "NEW_KEY", "N-2"]),
        value in new_value(),
    ) {
        let original = EnvFile::parse(&text, None).expect("generated files are valid");
        let mut file = original.clone();
        file.set(key, &value).expect("valid key");
        let out = file.render();
        let reread = EnvFile::parse(&out, None).expect("rendered files are valid");

        prop_assert_eq!(reread.get(key), Some(value.as_str()));
        for (k, v) in reread.pairs().filter(|(k, _)| *k == key) {
            prop_assert_eq!(v, value.as_str(), "every occurrence of {}", k);
        }
        let others = |f: &EnvFile| -> Vec<(String, String)> {
            f.pairs()
                .filter(|(k, _)| *k != key)
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect()
        };
        prop_assert_eq!(others(&original), others(&reread));

        let mut expected = non_key_raws(&original, key);
        if !original.contains(key) {
            if let Some(last) = expected.last_mut() {
                if !last.ends_with('\n') {
                    last.push_str(original.line_ending());
                }
            }
        }
        prop_assert_eq!(expected, non_key_raws(&reread, key));
        if original.contains(key) {
            prop_assert_eq!(frames(&original, key), frames(&reread, key));
        } else {
            let added = reread.entries.last().expect("appended");
            let start = format!("{}=", key);
            prop_assert!(added.raw.starts_with(&start));
            prop_assert!(added.raw.ends_with(original.line_ending()));
        }
    }
}
