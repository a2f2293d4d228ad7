//! One entry of a `.env` held losslessly: its exact text, plus the offsets of its key and value.
//!
//! Replacing a value rewrites only the bytes between those offsets, so `export `, spacing, a
//! trailing comment and the line ending stay as they were. Buffers are sized up front and zeroed
//! when dropped, so no unzeroed copy of a secret is left behind.

use zeroize::Zeroizing;

use super::quote::{choose_quote, encode_into, Quote};

/// The parsed parts of a `KEY=value` entry, as byte offsets into the entry's text. Offsets rather
/// than copies keep one allocation per entry; the text before `value_start` and after `value_end`
/// is what `set` must preserve.
#[derive(Clone)]
pub(super) struct Pair {
    pub(super) key_start: usize,
    pub(super) key_end: usize,
    /// Start of the value token (its opening quote, if quoted).
    pub(super) value_start: usize,
    /// End of the value token (after its closing quote, if quoted).
    pub(super) value_end: usize,
    pub(super) quote: Quote,
    /// The value when escapes make it differ from the text between the quotes; `None` when the
    /// text itself is the value (by far the common case, so no second copy of the secret).
    pub(super) decoded: Option<Zeroizing<String>>,
}

impl Pair {
    pub(super) fn key<'a>(&self, raw: &'a str) -> &'a str {
        &raw[self.key_start..self.key_end]
    }

    pub(super) fn value<'a>(&'a self, raw: &'a str) -> &'a str {
        match &self.decoded {
            Some(decoded) => decoded,
            None => undecoded(self.quote, &raw[self.value_start..self.value_end]),
        }
    }
}

/// The text of a value token without its quotes.
fn undecoded(quote: Quote, token: &str) -> &str {
    match quote {
        Quote::Bare => token,
        Quote::Single | Quote::Double => &token[1..token.len() - 1],
    }
}

/// One entry of the file: a blank line, a comment line, or a `KEY=value` that may span several
/// lines (quoted values). `raw` is its exact text including its line ending, if it has one.
/// No `Debug`: the text may hold secrets.
#[derive(Clone)]
pub(super) struct Entry {
    pub(super) raw: Zeroizing<String>,
    pub(super) pair: Option<Pair>,
}

impl Entry {
    pub(super) fn key(&self) -> Option<&str> {
        self.pair.as_ref().map(|pair| pair.key(&self.raw))
    }
}

/// A copy of `value` when the text of its token (without quotes) is not already the value.
pub(super) fn decoded_copy(quote: Quote, token: &str, value: &str) -> Option<Zeroizing<String>> {
    (undecoded(quote, token) != value).then(|| Zeroizing::new(value.to_owned()))
}

/// Rewrites the value of a `KEY=value` entry, keeping everything before and after the value.
pub(super) fn replace_value(entry: &mut Entry, value: &str) {
    let Some(pair) = entry.pair.as_mut() else {
        return;
    };
    if pair.value(&entry.raw) == value {
        return;
    }
    let old = &entry.raw;
    let quote = choose_quote(pair.quote, value);
    // Sized up front: growing a buffer would leave an unzeroed copy of the old one behind.
    let capacity = old.len() - (pair.value_end - pair.value_start) + 2 * value.len() + 2;
    let mut raw = Zeroizing::new(String::with_capacity(capacity));
    raw.push_str(&old[..pair.value_start]);
    encode_into(&mut raw, value, quote);
    let value_end = raw.len();
    raw.push_str(&old[pair.value_end..]);
    pair.decoded = decoded_copy(quote, &raw[pair.value_start..value_end], value);
    pair.quote = quote;
    pair.value_end = value_end;
    entry.raw = raw;
}

#[cfg(test)]
mod tests {
    use super::super::test_util::{parse, rendered, set};

    #[test]
    fn set_keeps_prefix_spacing_comment_and_quoting() {
        let text =
            concat!("export  A = old   # note\n", "B='old' # note\n", "C=\"old\"\n", "D=old\r\n", "E=\n", "F=   \n",);
        let mut file = parse(text);
        for key in ["A", "B", "C", "D", "E", "F"] {
            file.set(key, "n3w").expect("set");
        }
        assert_eq!(
            rendered(&file),
            concat!(
                "export  A = n3w   # note\n",
                "B='n3w' # note\n",
                "C=\"n3w\"\n",
                "D=n3w\r\n",
                "E=n3w\n",
                "F=   n3w\n",
            )
        );
    }

    #[test]
    fn setting_the_current_value_changes_nothing() {
        let text = "A=\"same\"   \nB='x\\'y'\n";
        assert_eq!(set(text, "A", "same"), text);
        assert_eq!(set(text, "B", "x'y"), text);
    }
}
