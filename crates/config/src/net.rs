//! Address-like values of a profile: IPv4 interface addresses with a prefix length, PCI
//! addresses, DPDK device names and service port selectors.

use std::fmt;
use std::net::Ipv4Addr;
use std::str::FromStr;

/// An interface address with its prefix length, written `198.18.0.1/24`.
///
/// The address is the host's own address (host bits set), not the network address.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Ipv4Cidr {
    /// The interface's own address.
    pub address: Ipv4Addr,
    /// Prefix length, 0..=32.
    pub prefix_len: u8,
}

impl Ipv4Cidr {
    /// The netmask of this prefix (`255.255.255.0` for /24).
    pub fn netmask(&self) -> Ipv4Addr {
        Ipv4Addr::from(mask_bits(self.prefix_len))
    }

    /// The network address (host bits cleared).
    pub fn network(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.address) & mask_bits(self.prefix_len))
    }

    /// The subnet's broadcast address (host bits set).
    pub fn broadcast(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.address) | !mask_bits(self.prefix_len))
    }

    /// Whether `ip` is on this subnet (the network and broadcast addresses included).
    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        let mask = mask_bits(self.prefix_len);
        u32::from(ip) & mask == u32::from(self.address) & mask
    }

    /// Whether the two subnets share at least one address.
    pub fn overlaps(&self, other: &Ipv4Cidr) -> bool {
        let len = self.prefix_len.min(other.prefix_len);
        let mask = mask_bits(len);
        u32::from(self.address) & mask == u32::from(other.address) & mask
    }

    /// Whether `ip` is the network or broadcast address of this subnet, which no host may
    /// use (only for prefixes up to /30; /31 and /32 have no such addresses, RFC 3021).
    pub fn is_reserved_host(&self, ip: Ipv4Addr) -> bool {
        self.prefix_len <= 30 && (ip == self.network() || ip == self.broadcast())
    }
}

fn mask_bits(prefix_len: u8) -> u32 {
    match prefix_len {
        0 => 0,
        n => u32::MAX << (32 - u32::from(n.min(32))),
    }
}

impl fmt::Display for Ipv4Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.address, self.prefix_len)
    }
}

impl FromStr for Ipv4Cidr {
    type Err = String;

    /// Parses `a.b.c.d/len`; the prefix length is required.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        let Some((addr, len)) = s.split_once('/') else {
            return Err(format!("`{s}` has no prefix length"));
        };
        let address: Ipv4Addr = addr
            .parse()
            .map_err(|_| format!("`{addr}` is not an IPv4 address"))?;
        let prefix_len: u8 = len
            .parse()
            .ok()
            .filter(|n| *n <= 32)
            .ok_or_else(|| format!("`/{len}` is not a prefix length"))?;
        Ok(Ipv4Cidr {
            address,
            prefix_len,
        })
    }
}

/// A PCI address `domain:bus:device.function`, written `0000:3b:00.0` (the domain may be
/// left out: `3b:00.0`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PciAddress {
    /// PCI domain (segment), usually 0.
    pub domain: u32,
    /// Bus number.
    pub bus: u8,
    /// Device number, 0..=31.
    pub device: u8,
    /// Function number, 0..=7.
    pub function: u8,
}

impl fmt::Display for PciAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:04x}:{:02x}:{:02x}.{:x}",
            self.domain, self.bus, self.device, self.function
        )
    }
}

impl FromStr for PciAddress {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || format!("`{s}` is not a PCI address");
        let (rest, function) = s.rsplit_once('.').ok_or_else(bad)?;
        let parts: Vec<&str> = rest.split(':').collect();
        let (domain, bus, device) = match parts.as_slice() {
            [d, b, dev] => (*d, *b, *dev),
            [b, dev] => ("0", *b, *dev),
            _ => return Err(bad()),
        };
        let hex = |t: &str, max_len: usize| {
            if t.is_empty() || t.len() > max_len || !t.bytes().all(|c| c.is_ascii_hexdigit()) {
                None
            } else {
                u32::from_str_radix(t, 16).ok()
            }
        };
        let domain = hex(domain, 8).ok_or_else(bad)?;
        let bus = hex(bus, 2).ok_or_else(bad)?;
        let device = hex(device, 2).filter(|d| *d < 32).ok_or_else(bad)?;
        let function = hex(function, 1).filter(|f| *f < 8).ok_or_else(bad)?;
        // The filters above bound every value, so the conversions cannot fail.
        Ok(PciAddress {
            domain,
            bus: u8::try_from(bus).map_err(|_| bad())?,
            device: u8::try_from(device).map_err(|_| bad())?,
            function: u8::try_from(function).map_err(|_| bad())?,
        })
    }
}

/// The DPDK device behind a port.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Device {
    /// A PCI device bound to a DPDK-capable driver (vfio-pci), named by its address.
    Pci(PciAddress),
    /// A virtual device created by an EAL `--vdev NAME,...` argument, named by `NAME`
    /// (for example `net_af_packet0`).
    Virtual(String),
}

impl Device {
    /// Parses a device name: a PCI address, or else a virtual device name of letters,
    /// digits and `_` that starts with a letter.
    ///
    /// # Errors
    ///
    /// A sentence saying why `s` is neither.
    pub fn parse(s: &str) -> Result<Device, String> {
        let s = s.trim();
        if let Ok(pci) = s.parse::<PciAddress>() {
            return Ok(Device::Pci(pci));
        }
        if !s.is_empty()
            && s.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'_')
            && s.bytes().next().is_some_and(|c| c.is_ascii_alphabetic())
        {
            return Ok(Device::Virtual(s.to_owned()));
        }
        Err(format!(
            "`{s}` is neither a PCI address nor a virtual device name"
        ))
    }

    /// The name DPDK gives the port (`0000:3b:00.0` or `net_af_packet0`), which is what
    /// `rte_eth_dev_get_port_by_name` takes.
    pub fn dpdk_name(&self) -> String {
        self.to_string()
    }
}

impl fmt::Display for Device {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Device::Pci(pci) => pci.fmt(f),
            Device::Virtual(name) => f.write_str(name),
        }
    }
}

/// Which TCP destination ports of a VIP a service takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ServicePort {
    /// Every TCP port of the VIP.
    Any,
    /// One port, 1..=65535.
    Single(u16),
    /// An inclusive range `first-last`, 1 <= first <= last.
    Range(u16, u16),
}

impl ServicePort {
    /// Whether TCP destination port `port` belongs to this service.
    pub fn contains(&self, port: u16) -> bool {
        match *self {
            ServicePort::Any => true,
            ServicePort::Single(p) => p == port,
            ServicePort::Range(a, b) => (a..=b).contains(&port),
        }
    }

    /// The inclusive bounds of the ports taken.
    pub fn bounds(&self) -> (u16, u16) {
        match *self {
            ServicePort::Any => (1, u16::MAX),
            ServicePort::Single(p) => (p, p),
            ServicePort::Range(a, b) => (a, b),
        }
    }

    /// Whether some port belongs to both selectors.
    pub fn overlaps(&self, other: &ServicePort) -> bool {
        let (a0, a1) = self.bounds();
        let (b0, b1) = other.bounds();
        a0 <= b1 && b0 <= a1
    }

    /// The single port, if this selector names exactly one.
    pub fn single(&self) -> Option<u16> {
        match *self {
            ServicePort::Single(p) => Some(p),
            _ => None,
        }
    }
}

impl fmt::Display for ServicePort {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ServicePort::Any => f.write_str("any"),
            ServicePort::Single(p) => write!(f, "{p}"),
            ServicePort::Range(a, b) => write!(f, "{a}-{b}"),
        }
    }
}

impl FromStr for ServicePort {
    type Err = String;

    /// Parses `any`, `443` or `8000-8100`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        if s == "any" {
            return Ok(ServicePort::Any);
        }
        let port = |t: &str| -> Result<u16, String> {
            let t = t.trim();
            match t.parse::<u32>() {
                Ok(0) => Err("port 0 is not a TCP port".to_owned()),
                Ok(n) => u16::try_from(n).map_err(|_| format!("{n} is above 65535")),
                Err(_) => Err(format!("`{t}` is not a port number")),
            }
        };
        match s.split_once('-') {
            Some((a, b)) => {
                let (a, b) = (port(a)?, port(b)?);
                if a > b {
                    Err(format!("range `{s}` ends before it starts"))
                } else if a == b {
                    Ok(ServicePort::Single(a))
                } else {
                    Ok(ServicePort::Range(a, b))
                }
            }
            None => port(s).map(ServicePort::Single),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cidr_arithmetic() {
        let c: Ipv4Cidr = "198.19.0.1/24".parse().expect("valid");
        assert_eq!(c.network(), Ipv4Addr::new(198, 19, 0, 0));
        assert_eq!(c.broadcast(), Ipv4Addr::new(198, 19, 0, 255));
        assert_eq!(c.netmask(), Ipv4Addr::new(255, 255, 255, 0));
        assert!(c.contains(Ipv4Addr::new(198, 19, 0, 11)));
        assert!(!c.contains(Ipv4Addr::new(198, 18, 0, 11)));
        assert!(c.is_reserved_host(Ipv4Addr::new(198, 19, 0, 255)));
        let d: Ipv4Cidr = "198.18.0.1/15".parse().expect("valid");
        assert!(c.overlaps(&d) && d.overlaps(&c));
        let z: Ipv4Cidr = "10.0.0.1/0".parse().expect("valid");
        assert!(z.contains(Ipv4Addr::new(1, 2, 3, 4)));
        for bad in [
            "198.19.0.1",
            "198.19.0.1/33",
            "198.19.0/24",
            "x/24",
            "1.2.3.4/-1",
        ] {
            assert!(bad.parse::<Ipv4Cidr>().is_err(), "{bad}");
        }
    }

    #[test]
    fn pci_addresses() {
        let p: PciAddress = "0000:3b:00.1".parse().expect("valid");
        assert_eq!(p.to_string(), "0000:3b:00.1");
        let q: PciAddress = "3B:00.1".parse().expect("valid");
        assert_eq!(p, q);
        for bad in [
            "0000:3b:00.8",
            "0000:3b:20.0",
            "3b:00",
            "net_af_packet0",
            "0000:3b:00.0.0",
        ] {
            assert!(bad.parse::<PciAddress>().is_err(), "{bad}");
        }
    }

    #[test]
    fn devices() {
        assert!(matches!(Device::parse("0000:3b:00.0"), Ok(Device::Pci(_))));
        assert_eq!(
            Device::parse("net_af_packet0"),
            Ok(Device::Virtual("net_af_packet0".into()))
        );
        assert!(Device::parse("0000:3b:00.9").is_err());
        assert!(Device::parse("").is_err());
    }

    #[test]
    fn service_ports() {
        assert_eq!("any".parse(), Ok(ServicePort::Any));
        assert_eq!("443".parse(), Ok(ServicePort::Single(443)));
        assert_eq!("8000-8100".parse(), Ok(ServicePort::Range(8000, 8100)));
        for bad in ["0", "65536", "http", "9-1", "-5", ""] {
            assert!(bad.parse::<ServicePort>().is_err(), "{bad}");
        }
        assert!(ServicePort::Any.overlaps(&ServicePort::Single(5)));
        assert!(!ServicePort::Single(4).overlaps(&ServicePort::Range(5, 9)));
    }
}
