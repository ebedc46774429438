//! Counters declared once. A [`counters!`](crate::counters!) declaration gives each
//! counter, on one line, its field name, its kind and its Prometheus name; its doc comment
//! is its help text. From that it generates the struct, the table of [`CounterSpec`]s
//! ([`CounterSet::SPECS`]) and the `[u64; N]` conversions a worker's atomic slots use.
//!
//! Whoever shows counters (the Prometheus text, the DPDK telemetry dictionary, the exit
//! summary) walks the table, and whoever needs one counter reads its field: none is ever
//! looked up by name, so a typo does not compile instead of reading 0.

/// Whether a value only grows, or goes up and down.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum CounterKind {
    /// Events since start; only grows. Prometheus `counter`.
    Counter,
    /// What there is now; goes up and down. Prometheus `gauge`.
    Gauge,
}

impl CounterKind {
    /// The Prometheus `# TYPE`.
    pub const fn prometheus_type(self) -> &'static str {
        match self {
            CounterKind::Counter => "counter",
            CounterKind::Gauge => "gauge",
        }
    }
}

/// One counter's declaration.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct CounterSpec {
    /// The field's name: the counter's key in the exit summary and in DPDK telemetry.
    pub name: &'static str,
    /// Counter or gauge.
    pub kind: CounterKind,
    /// The Prometheus metric name; in a set exposed as one family
    /// ([`CounterSet::FAMILY`]), the family's name.
    pub prometheus: &'static str,
    /// The field's doc comment on one line: the Prometheus `# HELP`.
    pub help: &'static str,
}

/// A set whose counters are the series of one Prometheus family, told apart by a label
/// whose value is the counter's name: `family{label="name"}`.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct CounterFamily {
    /// The family's metric name.
    pub name: &'static str,
    /// The label that names the counter.
    pub label: &'static str,
    /// The family's `# HELP`.
    pub help: &'static str,
}

/// A struct of counters declared with [`counters!`](crate::counters!).
pub trait CounterSet {
    /// Each counter's declaration, in field order.
    const SPECS: &'static [CounterSpec];
    /// The family the counters are series of, when the set is exposed as one.
    const FAMILY: Option<CounterFamily>;
    /// Each counter's value, in [`Self::SPECS`] order.
    fn values(&self) -> impl Iterator<Item = u64>;
    /// Adds `other` counter by counter (a sum over workers; gauges add up too).
    fn add(&mut self, other: &Self);
    /// Each counter's declaration with its value.
    fn counters(&self) -> impl Iterator<Item = (&'static CounterSpec, u64)> {
        Self::SPECS.iter().zip(self.values())
    }
}

/// Fields beside the declared counters that [`CounterSet::add`] adds up too.
pub trait Accumulate {
    /// Adds `other` into `self`.
    fn accumulate(&mut self, other: &Self);
}

impl Accumulate for u64 {
    fn accumulate(&mut self, other: &u64) {
        *self = self.wrapping_add(*other);
    }
}

impl<T: Accumulate, const N: usize> Accumulate for [T; N] {
    fn accumulate(&mut self, other: &[T; N]) {
        for (a, b) in self.iter_mut().zip(other) {
            a.accumulate(b);
        }
    }
}

/// A counter's Prometheus name: its own (`explicit`, zero or one), or else its family's.
/// Evaluated in a `const`, so that a counter with neither, or with both, does not compile.
#[doc(hidden)]
pub const fn prometheus_name(
    explicit: &[&'static str],
    family: Option<CounterFamily>,
) -> &'static str {
    match (explicit, family) {
        ([name], None) => name,
        ([], Some(f)) => f.name,
        ([_], Some(_)) => panic!("a counter of a family has no Prometheus name of its own"),
        _ => panic!("a counter needs a Prometheus name (or its set a family)"),
    }
}

/// A doc comment's lines as `concat!` joins them (each starts with a space, which keeps
/// the words apart), trimmed.
#[doc(hidden)]
pub const fn help_text(doc: &'static str) -> &'static str {
    doc.trim_ascii()
}

/// Declares a struct of `u64` counters, one line each:
///
/// ```
/// tandem_engine::counters! {
///     /// Requests and what is open now.
///     #[derive(Clone, Debug, Default)]
///     pub struct Example {
///         /// Requests answered.
///         requests: counter "example_requests_total",
///         /// Connections open.
///         open: gauge "example_open_connections",
///     }
/// }
/// use tandem_engine::CounterSet;
/// let e = Example { requests: 3, open: 1 };
/// assert_eq!(Example::SPECS[0].help, "Requests answered.");
/// assert_eq!(Example::from_array(e.to_array()).requests, 3);
/// ```
///
/// A counter's doc comment is its help text (keep it one sentence or two, no newline
/// needed). Two optional clauses follow the struct:
///
/// - `and { pub field: Type, … }`: fields that are not in the table (the engine's drop
///   array, which [`DropReason`](crate::DropReason) declares); they start at
///   `Default::default()` in `from_array`, and must be [`Accumulate`].
/// - `family "name" by "label", "help";`: the counters are the series of one Prometheus
///   family, `name{label="<field>"}`; its counters then have no Prometheus name of their
///   own.
///
/// Generated: the struct (each counter a `pub u64`); `N`, `to_array` and `from_array`
/// (the counters in field order); and [`CounterSet`].
///
/// A counter with no Prometheus name, in a set that is no family, does not compile:
///
/// ```compile_fail
/// tandem_engine::counters! {
///     /// A set.
///     #[derive(Default)]
///     pub struct Unnamed {
///         /// Requests answered.
///         requests: counter,
///     }
/// }
/// ```
#[macro_export]
macro_rules! counters {
    (@kind counter) => { $crate::CounterKind::Counter };
    (@kind gauge) => { $crate::CounterKind::Gauge };
    (@family) => { None };
    (@family $name:literal, $label:literal, $help:literal) => {
        Some($crate::CounterFamily { name: $name, label: $label, help: $help })
    };
    (
        $(#[$attr:meta])*
        $vis:vis struct $set:ident {
            $( $(#[doc = $doc:literal])* $field:ident: $kind:ident $($prom:literal)?, )*
        }
        $( and { $( $(#[$xattr:meta])* $xvis:vis $xfield:ident: $xty:ty, )* } )?
        $( family $family:literal by $label:literal, $family_help:literal; )?
    ) => {
        $(#[$attr])*
        $vis struct $set {
            $( $(#[doc = $doc])* pub $field: u64, )*
            $($( $(#[$xattr])* $xvis $xfield: $xty, )*)?
        }

        impl $set {
            /// The number of counters (fields of the table).
            pub const N: usize = [$(stringify!($field),)*].len();

            /// The counters, in field order.
            // By reference for every set: the engine's `Counters` is not `Copy`.
            #[allow(clippy::wrong_self_convention)]
            pub fn to_array(&self) -> [u64; Self::N] {
                [$(self.$field,)*]
            }

            /// The counters from [`Self::to_array`]'s order; any other field at its
            /// default.
            pub fn from_array(values: [u64; Self::N]) -> Self {
                let [$($field,)*] = values;
                $set {
                    $($field,)*
                    $($( $xfield: Default::default(), )*)?
                }
            }
        }

        impl $crate::CounterSet for $set {
            const SPECS: &'static [$crate::CounterSpec] = &[$(
                $crate::CounterSpec {
                    name: stringify!($field),
                    kind: $crate::counters!(@kind $kind),
                    prometheus: $crate::counters::prometheus_name(
                        &[$($prom)?],
                        <$set as $crate::CounterSet>::FAMILY,
                    ),
                    help: $crate::counters::help_text(concat!($($doc),*)),
                },
            )*];

            const FAMILY: Option<$crate::CounterFamily> =
                $crate::counters!(@family $($family, $label, $family_help)?);

            fn values(&self) -> impl Iterator<Item = u64> {
                self.to_array().into_iter()
            }

            fn add(&mut self, other: &Self) {
                $( self.$field = self.$field.wrapping_add(other.$field); )*
                $($(
                    $crate::counters::Accumulate::accumulate(&mut self.$xfield, &other.$xfield);
                )*)?
            }
        }

        // Evaluates the table where the set is declared, so that a counter without a
        // Prometheus name is an error even before anything reads the table.
        const _: &[$crate::CounterSpec] = <$set as $crate::CounterSet>::SPECS;
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    crate::counters! {
        /// A set with a field beside its counters.
        #[derive(Clone, Debug, Default, PartialEq, Eq)]
        pub struct Sample {
            /// Things seen.
            seen: counter "sample_seen_total",
            /// Things held now, a doc comment
            /// on two lines.
            held: gauge "sample_held",
        }
        and {
            /// Not a counter of the table.
            pub by_kind: [u64; 2],
        }
    }

    crate::counters! {
        /// A set exposed as one family.
        #[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
        pub struct Events {
            /// Ons.
            on: counter,
            /// Offs.
            off: counter,
        }
        family "sample_events_total" by "event", "Events, by event";
    }

    #[test]
    fn a_declaration_gives_the_table_in_field_order() {
        assert_eq!(Sample::N, 2);
        assert_eq!(
            Sample::SPECS,
            &[
                CounterSpec {
                    name: "seen",
                    kind: CounterKind::Counter,
                    prometheus: "sample_seen_total",
                    help: "Things seen.",
                },
                CounterSpec {
                    name: "held",
                    kind: CounterKind::Gauge,
                    prometheus: "sample_held",
                    help: "Things held now, a doc comment on two lines.",
                },
            ]
        );
        assert_eq!(Sample::FAMILY, None);
        let s = Sample {
            seen: 5,
            held: 2,
            by_kind: [1, 1],
        };
        let named: Vec<(&str, u64)> = s.counters().map(|(c, v)| (c.name, v)).collect();
        assert_eq!(named, [("seen", 5), ("held", 2)]);
    }

    #[test]
    fn arrays_round_trip_and_sets_add_up_with_their_other_fields() {
        let mut a = Sample::from_array([7, 3]);
        assert_eq!(
            a,
            Sample {
                seen: 7,
                held: 3,
                by_kind: [0, 0]
            }
        );
        assert_eq!(a.to_array(), [7, 3]);
        a.by_kind = [1, 2];
        a.add(&Sample {
            seen: 1,
            held: 1,
            by_kind: [10, 20],
        });
        assert_eq!((a.seen, a.held, a.by_kind), (8, 4, [11, 22]));
    }

    #[test]
    fn a_family_names_its_counters_series() {
        assert_eq!(
            Events::FAMILY,
            Some(CounterFamily {
                name: "sample_events_total",
                label: "event",
                help: "Events, by event",
            })
        );
        assert!(Events::SPECS
            .iter()
            .all(|c| c.prometheus == "sample_events_total"));
        assert_eq!(
            Events::SPECS.iter().map(|c| c.name).collect::<Vec<_>>(),
            ["on", "off"]
        );
        assert_eq!(Events::from_array([1, 2]).values().sum::<u64>(), 3);
    }
}
