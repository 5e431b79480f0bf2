//! Splitting QEMU's output streams into lines, exactly as a boot reads
//! them from its pipes: at most a cap of bytes per line (a longer line is
//! cut into parts, the first flagged [`LineEnd::Overlong`]), and a last
//! line without its newline flagged [`LineEnd::Eof`]. The live boot
//! ([`crate::boot`]) and recorded output ([`crate::transcript`]) share it.

use std::io::BufRead;

use crate::console::LineEnd;

/// Longest console line accepted before it is cut (and called garbled).
pub const MAX_LINE: usize = 1 << 20;
/// Longest QEMU stderr line kept whole.
pub const STDERR_LINE: usize = 4096;
/// Lines of console and stderr kept for reports.
pub const TAIL_LINES: usize = 20;
/// The capacity of the console reader's buffer.
pub const READ_BUFFER: usize = 64 * 1024;

/// Keeps `line` as the newest of the last [`TAIL_LINES`] lines in `tail`.
pub fn push_tail(tail: &mut Vec<String>, line: String) {
    if tail.len() == TAIL_LINES {
        tail.remove(0);
    }
    tail.push(line);
}

/// Reads one line (without its `\n`) into `buf`, at most `cap` bytes.
/// `None` at the end of the stream.
pub fn read_chunk(
    r: &mut impl BufRead,
    buf: &mut Vec<u8>,
    cap: usize,
) -> std::io::Result<Option<LineEnd>> {
    buf.clear();
    loop {
        let avail = match r.fill_buf() {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if avail.is_empty() {
            return Ok((!buf.is_empty()).then_some(LineEnd::Eof));
        }
        let room = cap.saturating_sub(buf.len());
        match avail.iter().position(|&b| b == b'\n') {
            Some(i) if i <= room => {
                buf.extend_from_slice(&avail[..i]);
                r.consume(i + 1);
                return Ok(Some(LineEnd::Newline));
            }
            _ => {
                let n = avail.len().min(room);
                buf.extend_from_slice(&avail[..n]);
                r.consume(n);
                if buf.len() >= cap {
                    return Ok(Some(LineEnd::Overlong));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::BufReader;

    #[test]
    fn chunks_split_on_newlines_eof_and_cap() {
        let mut r = BufReader::with_capacity(4, &b"ab\ncdefghij\n\nxyz"[..]);
        let mut buf = Vec::new();
        let mut got = Vec::new();
        while let Some(end) = read_chunk(&mut r, &mut buf, 5).expect("read") {
            got.push((String::from_utf8_lossy(&buf).into_owned(), end));
        }
        use LineEnd::*;
        assert_eq!(
            got,
            vec![
                ("ab".into(), Newline),
                ("cdefg".into(), Overlong),
                ("hij".into(), Newline),
                ("".into(), Newline),
                ("xyz".into(), Eof),
            ]
        );
    }

    #[test]
    fn a_line_of_exactly_the_cap_is_whole() {
        let mut r = BufReader::with_capacity(2, &b"abcde\nf\n"[..]);
        let mut buf = Vec::new();
        assert_eq!(
            read_chunk(&mut r, &mut buf, 5).expect("read"),
            Some(LineEnd::Newline)
        );
        assert_eq!(buf, b"abcde");
        assert_eq!(
            read_chunk(&mut r, &mut buf, 5).expect("read"),
            Some(LineEnd::Newline)
        );
        assert_eq!(buf, b"f");
        assert_eq!(read_chunk(&mut r, &mut buf, 5).expect("read"), None);
    }
}
