/** SMS encoding and part counting (CAST.md §5: GSM-7 160/153, UCS-2 70/67). */

// GSM 03.38 default alphabet (ESC itself excluded) and the extension table (2 septets each: ESC + char).
const GSM7_BASIC = new Set(
  '@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !"#¤%&\'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà',
);
const GSM7_EXTENSION = new Set('\f^{}\\[~]|€');

export interface SmsSegments {
  encoding: 'GSM-7' | 'UCS-2';
  /** Characters as a person counts them (Unicode code points). */
  chars: number;
  /** Septets (GSM-7) or UTF-16 code units (UCS-2) — what the carrier counts. */
  units: number;
  parts: number;
}

export function countSmsSegments(text: string): SmsSegments {
  const chars = [...text].length;
  let septets = 0;
  let gsm = true;
  for (const ch of text) {
    if (GSM7_BASIC.has(ch)) septets += 1;
    else if (GSM7_EXTENSION.has(ch)) septets += 2;
    else {
      gsm = false;
      break;
    }
  }
  if (gsm) {
    return {
      encoding: 'GSM-7',
      chars,
      units: septets,
      parts: septets === 0 ? 0 : septets <= 160 ? 1 : Math.ceil(septets / 153),
    };
  }
  const units = text.length; // UTF-16 code units: an emoji outside the BMP takes 2
  return { encoding: 'UCS-2', chars, units, parts: units <= 70 ? 1 : Math.ceil(units / 67) };
}
