import { describe, expect, it } from 'vitest';
import { countSmsSegments } from '../../src/capabilities/channels/sms.js';

describe('countSmsSegments (CAST.md §5)', () => {
  it.each([
    ['a'.repeat(160), 'GSM-7', 160, 1],
    ['a'.repeat(161), 'GSM-7', 161, 2],
    ['a'.repeat(200), 'GSM-7', 200, 2], // doc example: 200 GSM-7 chars → 2 parts
    ['a'.repeat(306), 'GSM-7', 306, 2],
    ['a'.repeat(307), 'GSM-7', 307, 3],
    ['a'.repeat(450), 'GSM-7', 450, 3],
    ['ñÑäöüàé'.repeat(23), 'GSM-7', 161, 2], // accented letters of the GSM-7 default alphabet stay GSM-7
  ])('GSM-7 text %#', (text, enc, units, parts) => {
    expect(countSmsSegments(text)).toMatchObject({ encoding: enc, units, parts });
  });

  it('extension characters count two septets', () => {
    expect(countSmsSegments('€'.repeat(80))).toMatchObject({ encoding: 'GSM-7', chars: 80, units: 160, parts: 1 });
    expect(countSmsSegments('{}'.repeat(41))).toMatchObject({ encoding: 'GSM-7', chars: 82, units: 164, parts: 2 });
  });

  it('non-GSM characters switch to UCS-2 (70 / 67)', () => {
    expect(countSmsSegments('ç'.repeat(70))).toMatchObject({ encoding: 'UCS-2', units: 70, parts: 1 });
    expect(countSmsSegments('ç'.repeat(71))).toMatchObject({ encoding: 'UCS-2', units: 71, parts: 2 });
    expect(countSmsSegments('ç'.repeat(134))).toMatchObject({ parts: 2 });
    expect(countSmsSegments('ç'.repeat(135))).toMatchObject({ parts: 3 });
    expect(countSmsSegments('Salamat po! 你好')).toMatchObject({ encoding: 'UCS-2', parts: 1 });
  });

  it('emoji count as two UTF-16 units but one character', () => {
    const s = countSmsSegments('😀'.repeat(35));
    expect(s).toMatchObject({ encoding: 'UCS-2', chars: 35, units: 70, parts: 1 });
    expect(countSmsSegments('😀'.repeat(36)).parts).toBe(2);
  });

  it('450 Unicode characters need 7 parts', () => {
    expect(countSmsSegments('ç'.repeat(450)).parts).toBe(7);
  });
});
