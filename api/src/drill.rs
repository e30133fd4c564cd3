//! Drill kinds: the names `Drill(kind, …)` takes, in one table.

/// What a drill breaks on purpose.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DrillKind {
    InputStall,
    InputBlack,
    InputSilence,
    EncoderFail,
    OutputFail,
}

/// Every kind with its name on the bus, in the order the docs list them.
pub const KINDS: [(DrillKind, &str); 5] = [
    (DrillKind::InputStall, "input-stall"),
    (DrillKind::InputBlack, "input-black"),
    (DrillKind::InputSilence, "input-silence"),
    (DrillKind::EncoderFail, "encoder-fail"),
    (DrillKind::OutputFail, "output-fail"),
];

impl DrillKind {
    pub fn parse(name: &str) -> Option<DrillKind> {
        KINDS.iter().find(|(_, n)| *n == name).map(|(k, _)| *k)
    }

    pub fn name(self) -> &'static str {
        KINDS
            .iter()
            .find(|(k, _)| *k == self)
            .map(|(_, n)| *n)
            .expect("every kind is in KINDS")
    }

    /// Whether its target is an input (else an encoder or an output).
    pub fn on_input(self) -> bool {
        matches!(
            self,
            DrillKind::InputStall | DrillKind::InputBlack | DrillKind::InputSilence
        )
    }

    /// "input-stall, input-black, …, encoder-fail or output-fail": for
    /// messages that list what is accepted.
    pub fn expected() -> String {
        let names: Vec<&str> = KINDS.iter().map(|(_, n)| *n).collect();
        let (last, rest) = names.split_last().expect("KINDS is not empty");
        format!("{} or {last}", rest.join(", "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_kinds_map_both_ways() {
        for (k, n) in KINDS {
            assert_eq!(DrillKind::parse(n), Some(k));
            assert_eq!(k.name(), n);
        }
        assert_eq!(DrillKind::parse("input-stal"), None);
        assert_eq!(
            DrillKind::expected(),
            "input-stall, input-black, input-silence, encoder-fail or output-fail"
        );
    }
}
