//! What the EAL arguments say about lcores and devices, read the way `rte_eal_init` reads
//! them, so that a profile whose lcores or ports the EAL would not provide is rejected by
//! `tandem check` instead of failing at start.
//!
//! Only the options that matter for that are read: `-l`/`--lcores`/`-c` (which lcores
//! exist), `--main-lcore`, `--vdev`, `-a`/`--allow`, `-b`/`--block`, `--no-pci`. An lcore
//! list this does not understand (the `--lcores` forms with `@` and groups) turns the lcore
//! checks off rather than guessing.

use std::collections::BTreeSet;

use crate::net::PciAddress;

/// The facts read from the EAL arguments.
#[derive(Debug, Default)]
pub(crate) struct EalFacts {
    /// The lcores the EAL will start, with the argument as written; `None` when not given
    /// (then every CPU is an lcore) or not understood.
    pub lcores: Option<(BTreeSet<u32>, String)>,
    /// `--main-lcore`, if given.
    pub main_lcore: Option<u32>,
    /// Names of the `--vdev` devices (the part before the first comma).
    pub vdevs: Vec<String>,
    /// The PCI allow-list (`-a`/`--allow`); empty: every device is probed.
    pub allow: Vec<PciAddress>,
    /// The PCI block-list (`-b`/`--block`).
    pub block: Vec<PciAddress>,
    /// `--no-pci` was given.
    pub no_pci: bool,
}

impl EalFacts {
    /// Reads the arguments (without `argv[0]`).
    pub fn read(args: &[String]) -> EalFacts {
        let mut facts = EalFacts::default();
        let mut lcores_understood = true;
        let mut i = 0;
        while i < args.len() {
            let arg = args[i].as_str();
            // (option, value, how many arguments it used)
            let (opt, value, used) = split_option(arg, args.get(i + 1).map(String::as_str));
            i += used;
            let Some(value) = value else {
                if opt == "--no-pci" {
                    facts.no_pci = true;
                }
                continue;
            };
            match opt {
                "-l" | "--lcores" => match parse_lcore_list(value) {
                    Some(set) => facts.lcores = Some((set, format!("{opt} {value}"))),
                    None => lcores_understood = false,
                },
                "-c" => match parse_coremask(value) {
                    Some(set) => facts.lcores = Some((set, format!("-c {value}"))),
                    None => lcores_understood = false,
                },
                "--main-lcore" => facts.main_lcore = value.trim().parse().ok(),
                "--vdev" => {
                    let name = value.split(',').next().unwrap_or("").trim();
                    facts.vdevs.push(name.to_owned());
                }
                "-a" | "--allow" | "-w" | "--pci-whitelist" => {
                    if let Ok(pci) = value.split(',').next().unwrap_or("").parse() {
                        facts.allow.push(pci);
                    }
                }
                "-b" | "--block" | "--pci-blacklist" => {
                    if let Ok(pci) = value.split(',').next().unwrap_or("").parse() {
                        facts.block.push(pci);
                    }
                }
                _ => {}
            }
        }
        if !lcores_understood {
            facts.lcores = None;
        }
        facts
    }

    /// The EAL main lcore, which runs the thread that called `rte_eal_init`: `--main-lcore`,
    /// else the lowest lcore of the list; `None` if unknown.
    pub fn main_lcore(&self) -> Option<u32> {
        self.main_lcore
            .or_else(|| self.lcores.as_ref().and_then(|(s, _)| s.first().copied()))
    }
}

/// Options that take a value. A short option may have its value
/// attached (`-l0-3`), a long one after `=` (`--lcores=0-3`) or as the next argument.
const WITH_VALUE: &[&str] = &[
    "-l",
    "--lcores",
    "-c",
    "--main-lcore",
    "--vdev",
    "-a",
    "--allow",
    "-w",
    "--pci-whitelist",
    "-b",
    "--block",
    "--pci-blacklist",
];

fn split_option<'a>(arg: &'a str, next: Option<&'a str>) -> (&'a str, Option<&'a str>, usize) {
    if let Some((name, value)) = arg.split_once('=') {
        if name.starts_with("--") && WITH_VALUE.contains(&name) {
            return (name, Some(value), 1);
        }
    }
    if WITH_VALUE.contains(&arg) {
        return (arg, next, if next.is_some() { 2 } else { 1 });
    }
    if !arg.starts_with("--") && arg.len() > 2 {
        let (name, value) = arg.split_at(2);
        if WITH_VALUE.contains(&name) {
            return (name, Some(value), 1);
        }
    }
    (arg, None, 1)
}

/// `0-3,5,8-9` → {0,1,2,3,5,8,9}; `None` for forms with `@` or groups.
fn parse_lcore_list(s: &str) -> Option<BTreeSet<u32>> {
    let mut set = BTreeSet::new();
    for part in s.split(',') {
        let part = part.trim();
        let (a, b) = match part.split_once('-') {
            Some((a, b)) => (a.trim().parse::<u32>().ok()?, b.trim().parse::<u32>().ok()?),
            None => {
                let n = part.parse::<u32>().ok()?;
                (n, n)
            }
        };
        if a > b || b - a > 4096 {
            return None;
        }
        set.extend(a..=b);
    }
    (!set.is_empty()).then_some(set)
}

/// A hexadecimal coremask (`0xf`, `f`) → its set bits.
fn parse_coremask(s: &str) -> Option<BTreeSet<u32>> {
    let hex = s.trim().trim_start_matches("0x").trim_start_matches("0X");
    if hex.is_empty() || !hex.bytes().all(|c| c.is_ascii_hexdigit()) {
        return None;
    }
    let mut set = BTreeSet::new();
    for (nibble_index, c) in hex.bytes().rev().enumerate() {
        let nibble = char::from(c).to_digit(16)?;
        for bit in 0..4u32 {
            if nibble & (1 << bit) != 0 {
                set.insert(u32::try_from(nibble_index).ok()? * 4 + bit);
            }
        }
    }
    (!set.is_empty()).then_some(set)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts(args: &[&str]) -> EalFacts {
        EalFacts::read(&args.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>())
    }

    #[test]
    fn reads_lab_arguments() {
        let f = facts(&[
            "-l",
            "0-1",
            "--no-huge",
            "-m",
            "512",
            "--no-pci",
            "--file-prefix",
            "tandem-lab",
            "--vdev",
            "net_af_packet0,iface=out0",
            "--vdev=net_af_packet1,iface=in0",
        ]);
        assert_eq!(f.lcores.as_ref().map(|(s, _)| s.len()), Some(2));
        assert_eq!(f.main_lcore(), Some(0));
        assert_eq!(f.vdevs, ["net_af_packet0", "net_af_packet1"]);
        assert!(f.no_pci);
    }

    #[test]
    fn reads_pci_and_masks() {
        let f = facts(&[
            "-c",
            "0x1e",
            "--main-lcore=1",
            "-a",
            "0000:3b:00.0",
            "-a3b:00.1,rxq_cqe_comp_en=0",
            "-b",
            "0000:3b:00.2",
        ]);
        assert_eq!(
            f.lcores
                .as_ref()
                .map(|(s, _)| s.iter().copied().collect::<Vec<_>>()),
            Some(vec![1, 2, 3, 4])
        );
        assert_eq!(f.main_lcore(), Some(1));
        assert_eq!(f.allow.len(), 2);
        assert_eq!(f.allow[1].to_string(), "0000:3b:00.1");
        assert_eq!(f.block.len(), 1);
    }

    #[test]
    fn gives_up_on_complex_lcore_maps() {
        let f = facts(&["--lcores", "(0-3)@0,4@1"]);
        assert!(f.lcores.is_none());
        let f = facts(&["-l0,2,4-5"]);
        assert_eq!(
            f.lcores.map(|(s, _)| s.into_iter().collect::<Vec<_>>()),
            Some(vec![0, 2, 4, 5])
        );
    }
}
