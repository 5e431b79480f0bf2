//! Per-CPU trace rings: the last events each CPU passed, kept so that a
//! failure record can show the interleaving that led to it.
//!
//! Events are small and `Copy`; each CPU writes only its own ring (a lock per
//! ring keeps this safe Rust; it is uncontended except when a report reads it).

use alloc::vec::Vec;
use core::fmt;
use serde::{Deserialize, Serialize};

/// How many events each CPU keeps.
pub const RING: usize = 48;

/// What happened. The meaning of `obj`, `pindex` and `arg` per kind is given
/// in the variant's doc and used by `Display`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Ev {
    /// vm_fault starts: pindex = vpn, arg = 1 for a write.
    FaultStart,
    /// vm_fault restarts from RetryFault: arg = reason code (see `fault`).
    FaultRetry,
    /// vm_fault installed a page: obj/pindex = where it was found, arg = frame.
    FaultDone,
    /// swap_pager_getpages entered: pindex = ma[0], arg = read-behind wish.
    GetpagesEnter,
    /// getpages dropped the object lock to take a pbuf.
    GetpagesUnlock,
    /// getpbuf found the pool empty and slept.
    PbufSleep,
    /// getpbuf returned a buffer.
    PbufGot,
    /// getpages has the object lock again after getpbuf.
    GetpagesRelock,
    /// rbehind after clipping: arg = behind pages, pindex = ma[0].
    ClipBehind,
    /// Read-behind/ahead page allocated: pindex = its index.
    AllocBehind,
    /// One read I/O issued: pindex = first index, arg = page count.
    SwapRead,
    /// The read I/O completed: pages valid and unbusied.
    SwapReadDone,
    /// vm_object_split starts: obj = original, pindex = offidxstart, arg = size.
    SplitStart,
    /// split waits for paging-in-progress: arg = pip.
    SplitPipWait,
    /// split met a busy page and sleeps: pindex = its index.
    SplitBusySleep,
    /// split restarts its page loop: pindex = where find_least starts.
    SplitRestart,
    /// split renamed a page into the new object: pindex = original index.
    SplitMove,
    /// split freed an original page (split-skip): pindex = its index.
    SplitDiscard,
    /// split done: obj = new object, arg = pages moved.
    SplitDone,
    /// vmspace_fork starts: arg = parent image.
    ForkStart,
    /// vmspace_fork done: arg = child image.
    ForkDone,
    /// A child image exits: arg = image.
    Exit,
    /// Pageout wrote a page to swap: pindex = index, arg = swap block.
    Pageout,
    /// Object collapsed: obj = survivor, arg = backing object id.
    Collapse,
    /// A load checked: pindex = vpn, arg = version seen.
    Load,
    /// A store: pindex = vpn, arg = new version.
    Store,
    /// An oracle fired.
    Oracle,
    /// A delay was injected: arg = site number.
    Delay,
    /// qcollapse freed a shadowed backing page: obj = parent, pindex =
    /// backing index, arg = backing object id.
    QuickCollapse,
    /// Object bypassed its backing object: obj = parent, arg = skipped object.
    Bypass,
    /// A fault left its invalid placeholder page in the top object:
    /// obj = object, pindex = index.
    PlaceholderLeft,
    /// A fault waits for a collapse of obj to finish before it retries.
    CollapseWait,
    /// swapoff starts emptying a device: arg = device.
    SwapoffStart,
    /// swapoff dropped obj's lock at pindex (busy page, memory, pager).
    SwapoffUnlock,
    /// swapoff reads pindex from the block it holds: arg = swap block.
    SwapoffRead,
    /// swapoff dirtied pindex and freed its block.
    SwapoffDirty,
    /// swapoff emptied a device: arg = device.
    SwapoffDone,
}

/// One trace event.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TraceEvent {
    /// Nanoseconds since the run started.
    pub t: u64,
    /// What happened.
    pub ev: Ev,
    /// Object id (per kind).
    pub obj: u32,
    /// Page index (per kind).
    pub pindex: u32,
    /// Argument (per kind).
    pub arg: u32,
}

impl TraceEvent {
    /// What happened, without the time: `split obj 7: moves pindex 3`.
    pub fn what(&self) -> What<'_> {
        What(self)
    }
}

impl fmt::Display for TraceEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let us = self.t / 1000;
        write!(f, "{:>6}.{:03}ms {}", us / 1000, us % 1000, self.what())
    }
}

/// [`TraceEvent::what`]: the event's description.
pub struct What<'a>(&'a TraceEvent);

impl fmt::Display for What<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (o, p, a) = (self.0.obj, self.0.pindex, self.0.arg);
        match self.0.ev {
            Ev::FaultStart => write!(f, "fault {} vpn {p}", if a == 1 { "write" } else { "read" }),
            Ev::FaultRetry => write!(f, "fault retry (reason {a}) vpn {p}"),
            Ev::FaultDone => write!(f, "fault done: obj {o} pindex {p} frame {a}"),
            Ev::GetpagesEnter => write!(f, "getpages obj {o} pindex {p} rbehind wish {a}"),
            Ev::GetpagesUnlock => write!(f, "getpages drops obj {o} lock for a pbuf"),
            Ev::PbufSleep => write!(f, "getpbuf: pool empty, sleeps"),
            Ev::PbufGot => write!(f, "getpbuf: got a pbuf"),
            Ev::GetpagesRelock => write!(f, "getpages relocks obj {o}"),
            Ev::ClipBehind => write!(f, "getpages obj {o} pindex {p}: rbehind clipped to {a}"),
            Ev::AllocBehind => write!(f, "getpages allocates obj {o} pindex {p}"),
            Ev::SwapRead => write!(f, "swap read obj {o} pindex {p} + {a} pages"),
            Ev::SwapReadDone => write!(f, "swap read done obj {o} pindex {p} ({a} pages)"),
            Ev::SplitStart => write!(f, "split obj {o} from pindex {p}, {a} pages"),
            Ev::SplitPipWait => write!(f, "split obj {o} waits for pip {a}"),
            Ev::SplitBusySleep => write!(f, "split obj {o}: pindex {p} busy, sleeps"),
            Ev::SplitRestart => write!(f, "split obj {o}: restart find_least({p})"),
            Ev::SplitMove => write!(f, "split obj {o}: moves pindex {p}"),
            Ev::SplitDiscard => write!(f, "split obj {o}: frees repopulated pindex {p}"),
            Ev::SplitDone => write!(f, "split done: new obj {o}, {a} pages moved"),
            Ev::ForkStart => write!(f, "fork image {a} starts"),
            Ev::ForkDone => write!(f, "fork done: child image {a}"),
            Ev::Exit => write!(f, "image {a} exits"),
            Ev::Pageout => write!(f, "pageout obj {o} pindex {p} -> swap block {a}"),
            Ev::Collapse => write!(f, "collapse: obj {o} absorbs obj {a}"),
            Ev::Load => write!(f, "load vpn {p} sees version {a}"),
            Ev::Store => write!(f, "store vpn {p} version {a}"),
            Ev::Oracle => write!(
                f,
                "ORACLE: {}",
                crate::failure::FailureKind::ALL
                    .get(a as usize)
                    .map_or("?", |k| k.name())
            ),
            Ev::Delay => write!(f, "delay at site {a}"),
            Ev::QuickCollapse => {
                write!(f, "qcollapse obj {o}: frees obj {a} pindex {p}")
            }
            Ev::Bypass => write!(f, "collapse: obj {o} bypasses obj {a}"),
            Ev::PlaceholderLeft => {
                write!(f, "fault leaves invalid page obj {o} pindex {p}")
            }
            Ev::CollapseWait => write!(f, "fault waits for the collapse into obj {o}"),
            Ev::SwapoffStart => write!(f, "swapoff of device {a} starts"),
            Ev::SwapoffUnlock => write!(f, "swapoff drops obj {o} lock at pindex {p}"),
            Ev::SwapoffRead => write!(f, "swapoff reads obj {o} pindex {p} from swap block {a}"),
            Ev::SwapoffDirty => write!(f, "swapoff dirties obj {o} pindex {p}, frees its block"),
            Ev::SwapoffDone => write!(f, "swapoff of device {a} done"),
        }
    }
}

/// The last events of one CPU, oldest first.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CpuTrace {
    /// The CPU.
    pub cpu: u32,
    /// Its events, oldest first.
    pub events: Vec<TraceEvent>,
}

struct Ring {
    buf: Vec<TraceEvent>,
    next: usize,
}

/// One ring per CPU.
pub struct TraceRings {
    rings: Vec<spin::Mutex<Ring>>,
}

impl TraceRings {
    /// Empty rings for `ncpus` CPUs.
    pub fn new(ncpus: usize) -> Self {
        let rings = (0..ncpus.max(1))
            .map(|_| {
                spin::Mutex::new(Ring {
                    buf: Vec::with_capacity(RING),
                    next: 0,
                })
            })
            .collect();
        TraceRings { rings }
    }

    /// Records an event on `cpu`'s ring, overwriting its oldest one when full.
    pub fn push(&self, cpu: usize, e: TraceEvent) {
        let Some(ring) = self.rings.get(cpu) else {
            return;
        };
        let mut r = ring.lock();
        if r.buf.len() < RING {
            r.buf.push(e);
        } else {
            let i = r.next;
            r.buf[i] = e;
        }
        r.next = (r.next + 1) % RING;
    }

    /// Every CPU's events, oldest first.
    pub fn snapshot(&self) -> Vec<CpuTrace> {
        self.rings
            .iter()
            .enumerate()
            .map(|(cpu, ring)| {
                let r = ring.lock();
                let mut events = Vec::with_capacity(r.buf.len());
                if r.buf.len() == RING {
                    events.extend_from_slice(&r.buf[r.next..]);
                    events.extend_from_slice(&r.buf[..r.next]);
                } else {
                    events.extend_from_slice(&r.buf);
                }
                CpuTrace {
                    cpu: cpu as u32,
                    events,
                }
            })
            .collect()
    }
}

/// Merges per-CPU traces into one time-ordered interleaving `(cpu, event)`.
pub fn interleave(traces: &[CpuTrace]) -> Vec<(u32, TraceEvent)> {
    let mut all: Vec<(u32, TraceEvent)> = traces
        .iter()
        .flat_map(|t| t.events.iter().map(move |e| (t.cpu, *e)))
        .collect();
    all.sort_by_key(|(cpu, e)| (e.t, *cpu));
    all
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(t: u64) -> TraceEvent {
        TraceEvent {
            t,
            ev: Ev::Store,
            obj: 0,
            pindex: t as u32,
            arg: 0,
        }
    }

    #[test]
    fn ring_keeps_last_events_in_order() {
        let r = TraceRings::new(2);
        for t in 0..(RING as u64 + 5) {
            r.push(1, ev(t));
        }
        r.push(0, ev(3));
        let s = r.snapshot();
        assert_eq!(s[1].events.len(), RING);
        assert_eq!(s[1].events[0].t, 5);
        assert_eq!(s[1].events[RING - 1].t, RING as u64 + 4);
        let merged = interleave(&s);
        assert_eq!(merged.len(), RING + 1);
        assert!(merged.windows(2).all(|w| w[0].1.t <= w[1].1.t));
        assert!(alloc::format!("{}", s[0].events[0]).contains("store vpn 3"));
    }
}
