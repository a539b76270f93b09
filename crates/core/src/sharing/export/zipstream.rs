//! A zip written front to back, for a body that streams: each member's
//! local header carries no sizes (flag bit 3), its deflated data follows
//! as it is produced, then a data descriptor with the CRC and sizes, and
//! the central directory at the end. The `zip` crate's writer seeks back
//! to patch headers, which a response body cannot do.

use crate::{Error, Result};
use flate2::write::DeflateEncoder;
use flate2::Compression;
use std::io::Write;

struct Member {
    name: String,
    offset: u32,
    crc: u32,
    compressed: u32,
    size: u32,
}

struct Open {
    name: String,
    offset: u32,
    crc: crc32fast::Hasher,
    size: u64,
    compressed: u64,
    enc: DeflateEncoder<Vec<u8>>,
}

pub(crate) struct ZipStream {
    /// Bytes produced and not yet taken.
    out: Vec<u8>,
    /// Bytes written so far (offsets of headers).
    written: u64,
    members: Vec<Member>,
    open: Option<Open>,
    dos_time: u16,
    dos_date: u16,
}

const FLAGS: u16 = 0x0008 | 0x0800; // data descriptor; UTF-8 names
const DEFLATE: u16 = 8;
const VERSION: u16 = 20;

fn too_big() -> Error {
    Error::invalid(
        "EXPORT_TOO_LARGE",
        "a OneRoster file of the export passed 4 GiB (zip64 is not written)",
    )
}

fn u32_of(n: u64) -> Result<u32> {
    u32::try_from(n).map_err(|_| too_big())
}

impl ZipStream {
    /// `at`: the members' modification time.
    pub(crate) fn new(at: time::OffsetDateTime) -> Self {
        let dos_time =
            ((at.hour() as u16) << 11) | ((at.minute() as u16) << 5) | (at.second() as u16 / 2);
        let year = (at.year() - 1980).clamp(0, 127) as u16;
        let dos_date = (year << 9) | ((u8::from(at.month()) as u16) << 5) | at.day() as u16;
        ZipStream {
            out: Vec::new(),
            written: 0,
            members: Vec::new(),
            open: None,
            dos_time,
            dos_date,
        }
    }

    fn emit(&mut self, b: &[u8]) {
        self.out.extend_from_slice(b);
        self.written += b.len() as u64;
    }

    /// Starts a member (ending the one open).
    pub(crate) fn start(&mut self, name: &str) -> Result<()> {
        self.finish_member()?;
        let offset = u32_of(self.written)?;
        let mut h = Vec::with_capacity(30 + name.len());
        h.extend_from_slice(&0x0403_4b50u32.to_le_bytes());
        h.extend_from_slice(&VERSION.to_le_bytes());
        h.extend_from_slice(&FLAGS.to_le_bytes());
        h.extend_from_slice(&DEFLATE.to_le_bytes());
        h.extend_from_slice(&self.dos_time.to_le_bytes());
        h.extend_from_slice(&self.dos_date.to_le_bytes());
        h.extend_from_slice(&[0u8; 12]); // CRC and sizes: in the descriptor
        h.extend_from_slice(&(name.len() as u16).to_le_bytes());
        h.extend_from_slice(&0u16.to_le_bytes());
        h.extend_from_slice(name.as_bytes());
        self.emit(&h);
        self.open = Some(Open {
            name: name.to_owned(),
            offset,
            crc: crc32fast::Hasher::new(),
            size: 0,
            compressed: 0,
            enc: DeflateEncoder::new(Vec::new(), Compression::fast()),
        });
        Ok(())
    }

    /// Adds to the open member.
    pub(crate) fn write(&mut self, data: &[u8]) -> Result<()> {
        let Some(open) = self.open.as_mut() else {
            return Err(Error::Store("zip: no member open".into()));
        };
        open.crc.update(data);
        open.size += data.len() as u64;
        open.enc
            .write_all(data)
            .map_err(|e| Error::io("zip".to_owned(), e))?;
        let done = std::mem::take(open.enc.get_mut());
        open.compressed += done.len() as u64;
        self.emit(&done);
        Ok(())
    }

    fn finish_member(&mut self) -> Result<()> {
        let Some(open) = self.open.take() else {
            return Ok(());
        };
        let rest = open
            .enc
            .finish()
            .map_err(|e| Error::io("zip".to_owned(), e))?;
        let compressed = open.compressed + rest.len() as u64;
        self.emit(&rest);
        let m = Member {
            name: open.name,
            offset: open.offset,
            crc: open.crc.finalize(),
            compressed: u32_of(compressed)?,
            size: u32_of(open.size)?,
        };
        let mut d = Vec::with_capacity(16);
        d.extend_from_slice(&0x0807_4b50u32.to_le_bytes());
        d.extend_from_slice(&m.crc.to_le_bytes());
        d.extend_from_slice(&m.compressed.to_le_bytes());
        d.extend_from_slice(&m.size.to_le_bytes());
        self.emit(&d);
        self.members.push(m);
        Ok(())
    }

    /// Ends the last member and writes the central directory.
    pub(crate) fn finish(&mut self) -> Result<()> {
        self.finish_member()?;
        let start = u32_of(self.written)?;
        let mut cd = Vec::new();
        for m in &self.members {
            cd.extend_from_slice(&0x0201_4b50u32.to_le_bytes());
            cd.extend_from_slice(&VERSION.to_le_bytes()); // made by
            cd.extend_from_slice(&VERSION.to_le_bytes()); // needed
            cd.extend_from_slice(&FLAGS.to_le_bytes());
            cd.extend_from_slice(&DEFLATE.to_le_bytes());
            cd.extend_from_slice(&self.dos_time.to_le_bytes());
            cd.extend_from_slice(&self.dos_date.to_le_bytes());
            cd.extend_from_slice(&m.crc.to_le_bytes());
            cd.extend_from_slice(&m.compressed.to_le_bytes());
            cd.extend_from_slice(&m.size.to_le_bytes());
            cd.extend_from_slice(&(m.name.len() as u16).to_le_bytes());
            cd.extend_from_slice(&[0u8; 8]); // extra, comment, disk, internal attributes
            cd.extend_from_slice(&0u32.to_le_bytes()); // external attributes
            cd.extend_from_slice(&m.offset.to_le_bytes());
            cd.extend_from_slice(m.name.as_bytes());
        }
        let n = self.members.len() as u16;
        let size = u32_of(cd.len() as u64)?;
        cd.extend_from_slice(&0x0605_4b50u32.to_le_bytes());
        cd.extend_from_slice(&[0u8; 4]); // disk numbers
        cd.extend_from_slice(&n.to_le_bytes());
        cd.extend_from_slice(&n.to_le_bytes());
        cd.extend_from_slice(&size.to_le_bytes());
        cd.extend_from_slice(&start.to_le_bytes());
        cd.extend_from_slice(&0u16.to_le_bytes());
        self.emit(&cd);
        Ok(())
    }

    /// The bytes produced since the last call.
    pub(crate) fn take(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.out)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::io::Read;

    #[test]
    fn a_streamed_zip_reads_back_with_the_zip_crate() {
        let mut z = ZipStream::new(time::macros::datetime!(2026-12-02 10:00 UTC));
        let mut body = Vec::new();
        z.start("a.csv").unwrap();
        for i in 0..1000 {
            z.write(format!("line {i}\n").as_bytes()).unwrap();
            body.extend(z.take());
        }
        z.start("b.csv").unwrap();
        z.write(b"").unwrap();
        z.finish().unwrap();
        body.extend(z.take());
        let mut a = zip::ZipArchive::new(std::io::Cursor::new(body)).unwrap();
        let mut s = String::new();
        a.by_name("a.csv").unwrap().read_to_string(&mut s).unwrap();
        assert!(s.starts_with("line 0\nline 1\n") && s.ends_with("line 999\n"));
        s.clear();
        a.by_name("b.csv").unwrap().read_to_string(&mut s).unwrap();
        assert_eq!(s, "");
    }
}
