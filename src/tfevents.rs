//! TensorBoard event files: the TFRecord framing (length, masked CRC-32C, payload, masked CRC-32C)
//! around `Event` protocol buffers holding scalar summaries. Only the fields TensorBoard's scalar
//! dashboard reads are written: `wall_time`, `step`, `file_version` and `summary.value {tag,
//! simple_value}`. The encoding is written out here (a few varints) rather than pulled in with a
//! protobuf toolchain; `scripts/tensorboard.sh` reads the files back with TensorBoard's own reader.

use std::io::Write;

/// The version string TensorBoard expects in the first event of a file.
const FILE_VERSION: &str = "brain.Event:2";

/// CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), bitwise; event files are small.
pub fn crc32c(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in bytes {
        crc ^= b as u32;
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0x82F6_3B78
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// The masked CRC of TFRecord framing: rotated right by 15 bits plus a constant.
fn masked_crc(bytes: &[u8]) -> u32 {
    crc32c(bytes).rotate_right(15).wrapping_add(0xA282_EAD8)
}

/// A protobuf varint.
fn varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// A field key: field number and wire type.
fn key(out: &mut Vec<u8>, field: u32, wire: u8) {
    varint(out, ((field as u64) << 3) | wire as u64);
}

/// A length-delimited field (strings and embedded messages).
fn bytes_field(out: &mut Vec<u8>, field: u32, bytes: &[u8]) {
    key(out, field, 2);
    varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

/// `Event { wall_time = 1 (double), step = 2 (int64) }` and the rest of the message after them.
fn event(wall_time: f64, step: i64, rest: impl FnOnce(&mut Vec<u8>)) -> Vec<u8> {
    let mut e = Vec::new();
    key(&mut e, 1, 1);
    e.extend_from_slice(&wall_time.to_le_bytes());
    key(&mut e, 2, 0);
    varint(&mut e, step as u64);
    rest(&mut e);
    e
}

/// The first event of a file: its format version.
pub fn version_event(wall_time: f64) -> Vec<u8> {
    event(wall_time, 0, |e| bytes_field(e, 3, FILE_VERSION.as_bytes()))
}

/// An event with one scalar: `summary = 5 { value = 1 { tag = 1, simple_value = 2 (float) } }`.
/// TensorBoard stores scalars as f32, so the value is rounded to the nearest f32.
pub fn scalar_event(wall_time: f64, step: i64, tag: &str, value: f64) -> Vec<u8> {
    let mut v = Vec::new();
    bytes_field(&mut v, 1, tag.as_bytes());
    key(&mut v, 2, 5);
    v.extend_from_slice(&(value as f32).to_le_bytes());
    let mut summary = Vec::new();
    bytes_field(&mut summary, 1, &v);
    event(wall_time, step, |e| bytes_field(e, 5, &summary))
}

/// Writes one record of TFRecord framing around `payload`.
pub fn write_record(out: &mut impl Write, payload: &[u8]) -> std::io::Result<()> {
    let len = (payload.len() as u64).to_le_bytes();
    out.write_all(&len)?;
    out.write_all(&masked_crc(&len).to_le_bytes())?;
    out.write_all(payload)?;
    out.write_all(&masked_crc(payload).to_le_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32c_matches_the_standard_check_values() {
        // RFC 3720 (iSCSI) appendix B.4 and the usual "123456789" check value.
        assert_eq!(crc32c(b"123456789"), 0xE306_9283);
        assert_eq!(crc32c(&[0u8; 32]), 0x8A91_36AA);
        assert_eq!(crc32c(&[0xFFu8; 32]), 0x62A8_AB43);
        assert_eq!(crc32c(b""), 0);
    }

    #[test]
    fn varints_and_a_scalar_event_encode_as_protobuf_does() {
        let mut v = Vec::new();
        varint(&mut v, 300);
        assert_eq!(v, [0xAC, 0x02]);
        // Hand-encoded: wall_time 1.5 (0x09 + f64), step 7 (0x10 07), summary (0x2A len) holding
        // value (0x0A len) holding tag "a" (0x0A 01 61) and simple_value 2.0f (0x15 + f32).
        let e = scalar_event(1.5, 7, "a", 2.0);
        let mut expected = vec![0x09];
        expected.extend_from_slice(&1.5f64.to_le_bytes());
        expected.extend_from_slice(&[0x10, 0x07, 0x2A, 0x0A, 0x0A, 0x08, 0x0A, 0x01, b'a', 0x15]);
        expected.extend_from_slice(&2.0f32.to_le_bytes());
        assert_eq!(e, expected);
    }

    #[test]
    fn a_record_is_framed_with_its_length_and_masked_crcs() {
        let mut out = Vec::new();
        write_record(&mut out, b"xyz").unwrap();
        assert_eq!(out.len(), 8 + 4 + 3 + 4);
        assert_eq!(&out[..8], &3u64.to_le_bytes());
        assert_eq!(&out[12..15], b"xyz");
        let crc = u32::from_le_bytes(out[15..19].try_into().unwrap());
        assert_eq!(
            crc,
            crc32c(b"xyz").rotate_right(15).wrapping_add(0xA282_EAD8)
        );
    }
}
