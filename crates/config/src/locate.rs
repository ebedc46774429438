//! Where things are in the YAML text: field paths (`services[0].health.interval`) and a map
//! from the document's nodes to their line and column, in both directions.
//!
//! serde-saphyr reports a line and column for errors it finds while deserialising (unknown
//! key, wrong type) but not the field path; validation after deserialising knows the field
//! path but not the line. Both are answered by one tree of the document built from the
//! YAML parser's events (granit-parser, which serde-saphyr uses and re-exports), in which
//! every mapping key and every node keeps its start position:
//!
//! - [`SourceMap::position_of`]: field path → line and column (for validation errors);
//! - [`SourceMap::path_at`]: line and column → field path (for deserialiser errors).

use std::fmt;

use serde_saphyr::granit_parser::{Event, Parser};

/// One step of a field path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Seg {
    /// A mapping key.
    Key(String),
    /// A sequence index.
    Index(usize),
}

/// A field path such as `services[0].health.interval`.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub(crate) struct FieldPath(pub Vec<Seg>);

impl FieldPath {
    /// The empty path: the document itself.
    pub fn root() -> Self {
        FieldPath(Vec::new())
    }

    /// This path with a key appended.
    pub fn key(&self, key: &str) -> Self {
        let mut v = self.0.clone();
        v.push(Seg::Key(key.to_owned()));
        FieldPath(v)
    }

    /// This path with an index appended.
    pub fn index(&self, i: usize) -> Self {
        let mut v = self.0.clone();
        v.push(Seg::Index(i));
        FieldPath(v)
    }

    /// The path with indices blanked (`services[].health.interval`), to look up what a
    /// field allows.
    pub fn pattern(&self) -> String {
        let mut out = String::new();
        for seg in &self.0 {
            match seg {
                Seg::Key(k) => {
                    if !out.is_empty() {
                        out.push('.');
                    }
                    out.push_str(k);
                }
                Seg::Index(_) => out.push_str("[]"),
            }
        }
        out
    }
}

impl fmt::Display for FieldPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return f.write_str("(top level)");
        }
        let mut first = true;
        for seg in &self.0 {
            match seg {
                Seg::Key(k) => {
                    if !first {
                        f.write_str(".")?;
                    }
                    // An empty key (`'': 1`) is still a place to name.
                    f.write_str(if k.is_empty() { "\"\"" } else { k })?;
                }
                Seg::Index(i) => write!(f, "[{i}]")?,
            }
            first = false;
        }
        Ok(())
    }
}

/// A position in the text: 1-based line and 1-based column (in characters).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Pos {
    /// Line, from 1.
    pub line: u32,
    /// Column, from 1.
    pub column: u32,
}

impl Pos {
    /// The first character of the text.
    pub const START: Pos = Pos { line: 1, column: 1 };
}

#[derive(Debug)]
enum Kind {
    Scalar(String),
    Map(Vec<Entry>),
    Seq(Vec<Node>),
    /// An alias or anything else that is not looked into.
    Other,
}

#[derive(Debug)]
struct Node {
    start: Pos,
    kind: Kind,
}

impl Node {
    fn is_collection(&self) -> bool {
        matches!(self.kind, Kind::Map(_) | Kind::Seq(_))
    }
}

#[derive(Debug)]
struct Entry {
    key: String,
    key_pos: Pos,
    value: Node,
}

/// What [`SourceMap::path_at`] landed on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Hit {
    /// A mapping key; the path ends with that key.
    Key,
    /// A node (value); the path leads to it.
    Node,
}

/// The document's nodes with their positions.
#[derive(Debug)]
pub(crate) struct SourceMap {
    root: Option<Node>,
}

enum Frame {
    Map {
        start: Pos,
        entries: Vec<Entry>,
        key: Option<(String, Pos)>,
    },
    Seq {
        start: Pos,
        items: Vec<Node>,
    },
}

impl SourceMap {
    /// Builds the map of the first document of `text`. On a syntax error it keeps what was
    /// read before the error, so that positions up to there still map to paths.
    pub fn build(text: &str) -> SourceMap {
        let mut stack: Vec<Frame> = Vec::new();
        let mut root: Option<Node> = None;
        let mut done = false;
        for item in Parser::new_from_str(text) {
            let Ok((event, span)) = item else { break };
            let pos = Pos {
                line: u32::try_from(span.start.line()).unwrap_or(u32::MAX).max(1),
                column: u32::try_from(span.start.col())
                    .unwrap_or(u32::MAX - 1)
                    .saturating_add(1),
            };
            let finished = match event {
                Event::Scalar(text, ..) => Some(Node {
                    start: pos,
                    kind: Kind::Scalar(text.into_owned()),
                }),
                Event::Alias(_) | Event::UnresolvedAlias(_) => Some(Node {
                    start: pos,
                    kind: Kind::Other,
                }),
                Event::MappingStart(..) => {
                    stack.push(Frame::Map {
                        start: pos,
                        entries: Vec::new(),
                        key: None,
                    });
                    None
                }
                Event::SequenceStart(..) => {
                    stack.push(Frame::Seq {
                        start: pos,
                        items: Vec::new(),
                    });
                    None
                }
                Event::MappingEnd | Event::SequenceEnd => stack.pop().map(close),
                Event::DocumentEnd => {
                    done = true;
                    None
                }
                _ => None,
            };
            if let Some(node) = finished {
                add(&mut stack, &mut root, node);
            }
            if done {
                break;
            }
        }
        // A syntax error left collections open: close them so the partial tree is usable.
        while let Some(frame) = stack.pop() {
            let node = close(frame);
            add(&mut stack, &mut root, node);
        }
        SourceMap { root }
    }

    /// Where the field at `path` is: the value for a scalar, the key for a mapping or
    /// sequence value (its first line), the item for a sequence index. A path that goes
    /// further than the text (a field left out and defaulted) gives the position of the
    /// deepest part that is written.
    pub fn position_of(&self, path: &FieldPath) -> Pos {
        let Some(mut node) = self.root.as_ref() else {
            return Pos::START;
        };
        let mut best = node.start;
        let last = path.0.len().saturating_sub(1);
        for (i, seg) in path.0.iter().enumerate() {
            match (seg, &node.kind) {
                (Seg::Key(k), Kind::Map(entries)) => {
                    let Some(e) = entries.iter().find(|e| &e.key == k) else {
                        return best;
                    };
                    if i == last {
                        return if e.value.is_collection() {
                            e.key_pos
                        } else {
                            e.value.start.max(e.key_pos)
                        };
                    }
                    best = e.key_pos;
                    node = &e.value;
                }
                (Seg::Index(n), Kind::Seq(items)) => {
                    let Some(item) = items.get(*n) else {
                        return best;
                    };
                    best = item.start;
                    node = item;
                }
                _ => return best,
            }
        }
        best
    }

    /// The field path at a position, and whether the position is on a mapping key. With
    /// `prefer_key` false a position where a mapping or sequence starts names that
    /// collection (a value error); with it true it names the first key there (a key
    /// error).
    pub fn path_at(&self, pos: Pos, prefer_key: bool) -> (FieldPath, Hit) {
        let mut path = FieldPath::root();
        let Some(root) = self.root.as_ref() else {
            return (path, Hit::Node);
        };
        let mut node = root;
        loop {
            if !prefer_key && pos == node.start {
                return (path, Hit::Node);
            }
            match &node.kind {
                Kind::Map(entries) => {
                    let Some(e) = entries.iter().rev().find(|e| e.key_pos <= pos) else {
                        return (path, Hit::Node);
                    };
                    path.0.push(Seg::Key(e.key.clone()));
                    if pos < e.value.start || (pos == e.key_pos && prefer_key) {
                        return (path, Hit::Key);
                    }
                    node = &e.value;
                }
                Kind::Seq(items) => {
                    let Some((i, item)) =
                        items.iter().enumerate().rev().find(|(_, n)| n.start <= pos)
                    else {
                        return (path, Hit::Node);
                    };
                    path.0.push(Seg::Index(i));
                    node = item;
                }
                Kind::Scalar(_) | Kind::Other => return (path, Hit::Node),
            }
        }
    }

    /// The scalar text at a position, if a scalar starts there.
    pub fn scalar_at(&self, pos: Pos) -> Option<&str> {
        fn find(node: &Node, pos: Pos) -> Option<&str> {
            match &node.kind {
                Kind::Scalar(s) if node.start == pos => Some(s),
                Kind::Map(entries) => entries.iter().find_map(|e| find(&e.value, pos)),
                Kind::Seq(items) => items.iter().find_map(|n| find(n, pos)),
                _ => None,
            }
        }
        self.root.as_ref().and_then(|r| find(r, pos))
    }
}

fn close(frame: Frame) -> Node {
    match frame {
        Frame::Map {
            start,
            mut entries,
            key,
        } => {
            // A key whose value was never read (the text broke there) still names where
            // the reading stopped.
            if let Some((key, key_pos)) = key {
                entries.push(Entry {
                    key,
                    key_pos,
                    value: Node {
                        start: key_pos,
                        kind: Kind::Other,
                    },
                });
            }
            Node {
                start,
                kind: Kind::Map(entries),
            }
        }
        Frame::Seq { start, items } => Node {
            start,
            kind: Kind::Seq(items),
        },
    }
}

fn add(stack: &mut [Frame], root: &mut Option<Node>, node: Node) {
    match stack.last_mut() {
        None => {
            if root.is_none() {
                *root = Some(node);
            }
        }
        Some(Frame::Seq { items, .. }) => items.push(node),
        Some(Frame::Map { entries, key, .. }) => match key.take() {
            None => {
                let text = match &node.kind {
                    Kind::Scalar(s) => s.clone(),
                    _ => "?".to_owned(),
                };
                *key = Some((text, node.start));
            }
            Some((k, key_pos)) => entries.push(Entry {
                key: k,
                key_pos,
                value: node,
            }),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOC: &str = "\
# comment
a:
  x: 1   # trailing
  s:
  t: ~
list:
  - name: a
    q: [1, {b: 2}]
  -   name: b
flow: {k: v, m: [3, 4]}
";

    fn path(p: &[Seg]) -> FieldPath {
        FieldPath(p.to_vec())
    }

    fn k(s: &str) -> Seg {
        Seg::Key(s.to_owned())
    }

    #[test]
    fn positions_of_paths() {
        let m = SourceMap::build(DOC);
        let at = |line, column| Pos { line, column };
        assert_eq!(m.position_of(&path(&[k("a"), k("x")])), at(3, 6));
        assert_eq!(m.position_of(&path(&[k("a")])), at(2, 1));
        assert_eq!(m.position_of(&path(&[k("list"), Seg::Index(1)])), at(9, 7));
        assert_eq!(
            m.position_of(&path(&[k("list"), Seg::Index(1), k("name")])),
            at(9, 13)
        );
        assert_eq!(
            m.position_of(&path(&[k("list"), Seg::Index(0), k("q")])),
            at(8, 5)
        );
        assert_eq!(m.position_of(&path(&[k("flow"), k("k")])), at(10, 11));
        // Missing fields fall back to the deepest written ancestor.
        assert_eq!(
            m.position_of(&path(&[k("list"), Seg::Index(0), k("zzz")])),
            at(7, 5)
        );
        assert_eq!(m.position_of(&path(&[k("nope"), k("x")])), at(2, 1));
    }

    #[test]
    fn paths_at_positions() {
        let m = SourceMap::build(DOC);
        let at = |line, column| Pos { line, column };
        let (p, hit) = m.path_at(at(3, 3), true);
        assert_eq!((p.to_string(), hit), ("a.x".to_owned(), Hit::Key));
        let (p, hit) = m.path_at(at(3, 6), false);
        assert_eq!((p.to_string(), hit), ("a.x".to_owned(), Hit::Node));
        let (p, _) = m.path_at(at(8, 17), false);
        assert_eq!(p.to_string(), "list[0].q[1].b");
        let (p, hit) = m.path_at(at(7, 5), false);
        assert_eq!((p.to_string(), hit), ("list[0]".to_owned(), Hit::Node));
        let (p, hit) = m.path_at(at(7, 5), true);
        assert_eq!((p.to_string(), hit), ("list[0].name".to_owned(), Hit::Key));
        let (p, _) = m.path_at(at(10, 21), false);
        assert_eq!(p.to_string(), "flow.m[1]");
    }

    #[test]
    fn survives_syntax_errors() {
        let m = SourceMap::build("a:\n  b: [1, 2\nc: 3\n");
        let (p, _) = m.path_at(Pos { line: 2, column: 8 }, false);
        assert_eq!(p.to_string(), "a.b[0]");
        let m = SourceMap::build("");
        assert_eq!(m.position_of(&FieldPath::root().key("x")), Pos::START);
    }
}
