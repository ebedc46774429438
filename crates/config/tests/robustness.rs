//! No input makes the loader panic, and every diagnostic points inside the text.

use proptest::prelude::*;

const LAB: &str = include_str!("../../../configs/lab.yaml");

fn check(text: &str) {
    if let Err(err) = tandem_config::parse("fuzz.yaml", text) {
        let lines = u32::try_from(text.lines().count()).unwrap_or(u32::MAX);
        for d in err.diagnostics() {
            assert!(d.line >= 1 && d.line <= lines + 1, "{d}\n---\n{text}");
            assert!(d.column >= 1, "{d}");
            assert!(!d.field.is_empty() && !d.allowed.is_empty(), "{d}");
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// The lab profile with a piece cut out.
    #[test]
    fn cut(start in 0usize..LAB.len(), len in 0usize..64) {
        let start = (0..=start).rev().find(|&i| LAB.is_char_boundary(i)).unwrap_or(0);
        let end = (start + len).min(LAB.len());
        let end = (end..=LAB.len()).find(|&i| LAB.is_char_boundary(i)).unwrap_or(LAB.len());
        check(&format!("{}{}", &LAB[..start], &LAB[end..]));
    }

    /// The lab profile with a few characters replaced by YAML-significant ones.
    #[test]
    fn splice(at in 0usize..LAB.len(), junk in "[-:{}\\[\\],&*!|>'\"#% \t\n0a]{1,6}") {
        let at = (0..=at).rev().find(|&i| LAB.is_char_boundary(i)).unwrap_or(0);
        check(&format!("{}{}{}", &LAB[..at], junk, &LAB[at..]));
    }

    /// Anything at all.
    #[test]
    fn arbitrary(text in "\\PC{0,200}") {
        check(&text);
    }
}
