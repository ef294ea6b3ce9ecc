//! G.711 µ-law (ITU-T G.711, the North American telephone codec Twilio uses).

const BIAS: i32 = 0x84;
const CLIP: i32 = 32635;

/// Encodes one PCM16 sample as µ-law.
pub fn mulaw_encode(sample: i16) -> u8 {
    let mut s = sample as i32;
    let sign = if s < 0 { 0x80 } else { 0 };
    if s < 0 {
        s = -s;
    }
    s = s.min(CLIP) + BIAS;
    let exponent = (31 - (s as u32).leading_zeros() as i32 - 7).clamp(0, 7);
    let mantissa = (s >> (exponent + 3)) & 0x0F;
    !(sign | (exponent << 4) as u8 | mantissa as u8)
}

/// Decodes one µ-law byte to PCM16.
pub fn mulaw_decode(byte: u8) -> i16 {
    let b = !byte as i32;
    let sign = b & 0x80;
    let exponent = (b >> 4) & 0x07;
    let mantissa = b & 0x0F;
    let magnitude = (((mantissa << 3) + BIAS) << exponent) - BIAS;
    (if sign != 0 { -magnitude } else { magnitude }) as i16
}

pub fn mulaw_encode_all(pcm: &[i16]) -> Vec<u8> {
    pcm.iter().map(|&s| mulaw_encode(s)).collect()
}

pub fn mulaw_decode_all(bytes: &[u8]) -> Vec<i16> {
    bytes.iter().map(|&b| mulaw_decode(b)).collect()
}

/// µ-law code of digital silence.
pub const MULAW_SILENCE: u8 = 0xFF;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_round_trips() {
        for code in 0..=255u8 {
            if code == 0x7F {
                continue; // negative zero decodes to 0, which encodes as positive zero
            }
            assert_eq!(mulaw_encode(mulaw_decode(code)), code, "code {code:#x}");
        }
        assert_eq!(mulaw_decode(MULAW_SILENCE), 0);
    }

    #[test]
    fn quantisation_error_is_bounded_relative_to_level() {
        for s in (-32768i32..=32767).step_by(7) {
            let s = s as i16;
            let back = mulaw_decode(mulaw_encode(s)) as i32;
            let err = (back - s as i32).abs();
            // µ-law step is at most 1/16 of the segment: ≤ ~3.2% of the level, 8 near zero.
            let bound = ((s as i32).abs().min(CLIP) / 16).max(8) + 4 + if (s as i32).abs() > CLIP { (s as i32).abs() - CLIP } else { 0 };
            assert!(err <= bound, "sample {s} -> {back} (err {err} > {bound})");
        }
    }

    #[test]
    fn known_values_match_the_standard() {
        assert_eq!(mulaw_encode(0), 0xFF);
        assert_eq!(mulaw_encode(-1), 0x7F);
        assert_eq!(mulaw_encode(32767), 0x80);
        assert_eq!(mulaw_encode(-32768), 0x00);
        assert_eq!(mulaw_decode(0x80), 32124);
        assert_eq!(mulaw_decode(0x00), -32124);
    }
}
