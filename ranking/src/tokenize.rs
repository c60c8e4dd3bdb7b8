//! Text to search terms. The same function reads the schema and the question, so both sides meet on the same
//! terms:
//!
//! * identifiers are split into words at `_`, punctuation, case changes and digits (`OrderItems2` gives `order`,
//!   `item` and `2`); words are lowercased and lightly stemmed (`categories` gives `category`);
//! * CJK text has no spaces between words, and most Chinese words are two characters long: a run of CJK characters
//!   gives each character and each pair of neighbours (`客户订单` gives 客, 户, 订, 单, 客户, 户订 and 订单), so a
//!   question meets a comment on the words they share without a dictionary;
//! * in a question, words that carry no meaning for data (`the`, `of`, `how`, `的`, `每`) give no term (the
//!   schema keeps them: a term the question never has never scores, and looking every identifier up in the stop
//!   list would cost a fifth of the index build).
//!
//! Terms are handed to a callback as `&str` of a reused buffer: reading a 500-table schema allocates nothing per
//! term.

/// What a term is, which decides how much a match on it counts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    /// A word or number of an identifier or of alphabetic text, normalised.
    Word,
    /// One CJK character: a weak signal (`户` is in 客户, 用户 and 账户).
    Char,
    /// Two neighbouring CJK characters, the usual length of a Chinese word.
    Pair,
}

/// Which text is read: stop words are dropped from questions only.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Source {
    Schema,
    Question,
}

/// English words dropped from questions: they appear in schemas (`created_at`, `valid_from`) and questions alike
/// without telling one table from another. Sorted, for `binary_search`.
const STOP_WORDS: &[&str] = &[
    "all", "an", "and", "any", "are", "as", "at", "be", "by", "can", "did", "do", "does", "each", "for", "from", "get",
    "give", "has", "have", "how", "in", "into", "is", "it", "its", "me", "of", "on", "or", "our", "per", "please",
    "show", "than", "that", "the", "their", "them", "these", "this", "those", "to", "was", "we", "were", "what",
    "when", "where", "which", "who", "whose", "with",
];

/// CJK characters that give no single-character term in a question (their pairs are kept: `每个` is harmless, `的订` rarely
/// matches anything).
const STOP_CHARS: &str = "的了是每个和与及或在有各些吗呢请把被为按从中里都所哪什么多少几我们你他她它就也";

/// Calls `emit` with every term of `text` in order. `buf` is scratch space, reused across calls.
pub(crate) fn for_each_term(text: &str, source: Source, buf: &mut String, mut emit: impl FnMut(&str, Kind)) {
    let question = source == Source::Question;
    let mut word_start: Option<usize> = None;
    let mut prev = Class::Other;
    let mut prev_char = ' ';
    let mut chars = text.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        let class = class_of(c);
        let boundary = match (prev, class) {
            (_, Class::Cjk | Class::Other) => true,
            (Class::Lower, Class::Upper) | (Class::Digit, Class::Upper | Class::Lower) => true,
            (Class::Upper | Class::Lower, Class::Digit) => true,
            // The last capital of a run starts the next word: `HTTPServer` is `HTTP` and `Server`.
            (Class::Upper, Class::Upper) => chars.peek().is_some_and(|&(_, next)| class_of(next) == Class::Lower),
            _ => false,
        };
        if boundary && let Some(start) = word_start.take() {
            emit_word(&text[start..i], question, buf, &mut emit);
        }
        match class {
            Class::Cjk => {
                if !(question && STOP_CHARS.contains(c)) {
                    emit(c.encode_utf8(&mut [0; 4]), Kind::Char);
                }
                if prev == Class::Cjk {
                    buf.clear();
                    buf.push(prev_char);
                    buf.push(c);
                    emit(buf, Kind::Pair);
                }
                prev_char = c;
            }
            Class::Other => {}
            Class::Upper | Class::Lower | Class::Digit => {
                word_start.get_or_insert(i);
            }
        }
        prev = class;
    }
    if let Some(start) = word_start {
        emit_word(&text[start..], question, buf, &mut emit);
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Class {
    Upper,
    Lower,
    Digit,
    Cjk,
    Other,
}

fn class_of(c: char) -> Class {
    if c.is_ascii_lowercase() {
        Class::Lower
    } else if c.is_ascii_uppercase() {
        Class::Upper
    } else if c.is_ascii_digit() {
        Class::Digit
    } else if c.is_ascii() {
        Class::Other
    } else if is_cjk(c) {
        Class::Cjk
    } else if c.is_uppercase() {
        Class::Upper
    } else if c.is_alphabetic() {
        Class::Lower
    } else {
        Class::Other
    }
}

/// Han ideographs, kana and Hangul: scripts written without spaces between words.
fn is_cjk(c: char) -> bool {
    matches!(c,
        '\u{3040}'..='\u{30FF}'      // hiragana, katakana
        | '\u{3400}'..='\u{4DBF}'    // CJK extension A
        | '\u{4E00}'..='\u{9FFF}'    // CJK unified ideographs
        | '\u{AC00}'..='\u{D7AF}'    // Hangul syllables
        | '\u{F900}'..='\u{FAFF}'    // CJK compatibility ideographs
        | '\u{20000}'..='\u{2FA1F}') // CJK extensions B and later
}

fn emit_word(word: &str, question: bool, buf: &mut String, emit: &mut impl FnMut(&str, Kind)) {
    buf.clear();
    if word.is_ascii() {
        buf.push_str(word);
        buf.make_ascii_lowercase();
    } else {
        buf.extend(word.chars().flat_map(char::to_lowercase));
    }
    // Single letters are table aliases and prefixes (`t_orders`, `o.id`), not words.
    let single_letter = buf.len() == 1 && !buf.as_bytes()[0].is_ascii_digit();
    if single_letter || question && STOP_WORDS.binary_search(&buf.as_str()).is_ok() {
        return;
    }
    stem(buf);
    emit(buf, Kind::Word);
}

/// Light English normalisation, so that the forms of one word meet: plurals (`categories`, `boxes`, `orders`),
/// `-ing` and `-ed` (`shipping`, `ordered`) and a final `e` (`price` and `prices` both give `pric`). Not a real
/// stemmer: it only has to treat both sides alike, and misses (`rate`, `rating`) cost a little recall, never a
/// wrong table.
fn stem(word: &mut String) {
    if word.len() <= 3 || !word.bytes().all(|b| b.is_ascii_lowercase()) {
        return;
    }
    if word.len() > 4 && word.ends_with("ies") {
        word.truncate(word.len() - 3);
        word.push('y');
    } else if ["sses", "xes", "ches", "shes"].iter().any(|end| word.ends_with(end)) {
        word.truncate(word.len() - 2);
    } else if word.ends_with('s') && !["ss", "us", "is"].iter().any(|end| word.ends_with(end)) {
        word.pop();
    }
    for suffix in ["ing", "ed"] {
        if word.len() >= suffix.len() + 3 && word.ends_with(suffix) {
            word.truncate(word.len() - suffix.len());
            // `shipped` -> `shipp` -> `ship`; but `billing` -> `bill`, `addressed` -> `address`.
            let bytes = word.as_bytes();
            let last = bytes[bytes.len() - 1];
            if last == bytes[bytes.len() - 2] && !b"aeioulsz".contains(&last) {
                word.pop();
            }
            break;
        }
    }
    if word.len() > 3 && word.ends_with('e') {
        word.pop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn terms(text: &str) -> Vec<(String, Kind)> {
        let mut out = Vec::new();
        for_each_term(text, Source::Question, &mut String::new(), |term, kind| out.push((term.to_owned(), kind)));
        out
    }

    fn words(text: &str) -> Vec<String> {
        terms(text)
            .into_iter()
            .map(|(term, kind)| {
                assert_eq!(kind, Kind::Word, "{term}");
                term
            })
            .collect()
    }

    #[test]
    fn snake_case_camel_case_and_digits_are_split() {
        assert_eq!(words("sales_order_items"), ["sal", "order", "item"]);
        assert_eq!(words("customerId"), ["customer", "id"]);
        assert_eq!(words("HTTPServerLogs"), ["http", "server", "log"]);
        assert_eq!(words("userID"), ["user", "id"]);
        assert_eq!(words("address2 q3Revenue fy2023"), ["address", "2", "3", "revenu", "fy", "2023"]);
        assert_eq!(words("sales.orders o, `Products`"), ["sal", "order", "product"]);
    }

    #[test]
    fn english_words_are_normalised_alike() {
        for (a, b) in [
            ("orders", "order"),
            ("categories", "category"),
            ("boxes", "box"),
            ("addresses", "address"),
            ("statuses", "status"),
            ("shipped", "shipping"),
            ("prices", "price"),
            ("created", "create"),
            ("warehouses", "warehouse"),
            ("Customers'", "customer"),
        ] {
            assert_eq!(words(a), words(b), "{a} / {b}");
        }
        assert_eq!(words("status"), ["status"]);
        assert_eq!(words("billing"), ["bill"]);
    }

    #[test]
    fn stop_words_and_single_letters_give_no_term() {
        assert_eq!(words("How many of the orders were shipped by a carrier?"), ["many", "order", "ship", "carrier"]);
        assert_eq!(words("t_orders created_at"), ["order", "creat"]);
        let mut schema = Vec::new();
        for_each_term("t_orders created_at 的", Source::Schema, &mut String::new(), |t, _| schema.push(t.to_owned()));
        assert_eq!(schema, ["order", "creat", "at", "的"], "the schema keeps its stop words");
        assert!(STOP_WORDS.windows(2).all(|w| w[0] < w[1]), "STOP_WORDS must stay sorted");
    }

    #[test]
    fn cjk_runs_give_characters_and_pairs() {
        let got = terms("客户订单");
        let pairs: Vec<&str> = got.iter().filter(|(_, k)| *k == Kind::Pair).map(|(t, _)| t.as_str()).collect();
        let chars: Vec<&str> = got.iter().filter(|(_, k)| *k == Kind::Char).map(|(t, _)| t.as_str()).collect();
        assert_eq!(pairs, ["客户", "户订", "订单"]);
        assert_eq!(chars, ["客", "户", "订", "单"]);
    }

    #[test]
    fn a_chinese_question_contains_the_words_of_its_comments() {
        let question = terms("每个客户的订单金额");
        for word in ["客户", "订单", "金额"] {
            assert!(question.iter().any(|(t, k)| t == word && *k == Kind::Pair), "{word}: {question:?}");
        }
        // Stop characters give no single-character term, but pairs through them are kept.
        assert!(!question.iter().any(|(t, k)| t == "的" && *k == Kind::Char));
        assert!(question.iter().any(|(t, _)| t == "每个"));
    }

    #[test]
    fn mixed_text_and_punctuation() {
        let got = terms("SQL语句，top10");
        let texts: Vec<&str> = got.iter().map(|(t, _)| t.as_str()).collect();
        assert_eq!(texts, ["sql", "语", "句", "语句", "top", "10"]);
        assert!(terms("").is_empty());
        assert!(terms(" ,.;()--").is_empty());
    }
}
