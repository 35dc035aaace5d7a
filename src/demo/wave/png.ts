// A minimal RGB canvas and PNG encoder (node's zlib for the deflate stream), with a 3×5
// pixel font for labels: enough to write the experiment's strip without a dependency.

import { deflateSync } from 'node:zlib'

export type Rgb = readonly [number, number, number]

const CRC_TABLE = (() => {
  const table = new Uint32Array(256)
  for (let n = 0; n < 256; n++) {
    let c = n
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1
    table[n] = c >>> 0
  }
  return table
})()

function crc32(bytes: Uint8Array): number {
  let c = 0xffffffff
  for (const byte of bytes) c = CRC_TABLE[(c ^ byte) & 0xff]! ^ (c >>> 8)
  return (c ^ 0xffffffff) >>> 0
}

function chunk(type: string, data: Buffer): Buffer {
  const head = Buffer.alloc(8)
  head.writeUInt32BE(data.length, 0)
  head.write(type, 4, 'ascii')
  const crc = Buffer.alloc(4)
  crc.writeUInt32BE(crc32(Buffer.concat([head.subarray(4), data])), 0)
  return Buffer.concat([head, data, crc])
}

/** PNG of 8-bit RGB pixels, rows top to bottom (filter 0 on every row). */
export function encodePng(width: number, height: number, rgb: Uint8Array): Buffer {
  if (rgb.length !== width * height * 3) throw new Error(`png: ${rgb.length} bytes for ${width}×${height} RGB`)
  const ihdr = Buffer.alloc(13)
  ihdr.writeUInt32BE(width, 0)
  ihdr.writeUInt32BE(height, 4)
  ihdr[8] = 8 // bit depth
  ihdr[9] = 2 // colour type: RGB
  const raw = Buffer.alloc(height * (width * 3 + 1))
  for (let y = 0; y < height; y++) Buffer.from(rgb.buffer, rgb.byteOffset + y * width * 3, width * 3).copy(raw, y * (width * 3 + 1) + 1)
  const signature = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a])
  return Buffer.concat([signature, chunk('IHDR', ihdr), chunk('IDAT', deflateSync(raw)), chunk('IEND', Buffer.alloc(0))])
}

// Five rows of 3 pixels each, top to bottom; '#' is ink.
const GLYPHS: Readonly<Record<string, string>> = {
  A: '.#. #.# ### #.# #.#', B: '##. #.# ##. #.# ##.', C: '.## #.. #.. #.. .##', D: '##. #.# #.# #.# ##.',
  E: '### #.. ##. #.. ###', F: '### #.. ##. #.. #..', G: '.## #.. #.# #.# .##', H: '#.# #.# ### #.# #.#',
  I: '### .#. .#. .#. ###', J: '..# ..# ..# #.# .#.', K: '#.# #.# ##. #.# #.#', L: '#.. #.. #.. #.. ###',
  M: '#.# ### ### #.# #.#', N: '##. #.# #.# #.# #.#', O: '.#. #.# #.# #.# .#.', P: '##. #.# ##. #.. #..',
  Q: '.#. #.# #.# ##. .##', R: '##. #.# ##. #.# #.#', S: '.## #.. .#. ..# ##.', T: '### .#. .#. .#. .#.',
  U: '#.# #.# #.# #.# ###', V: '#.# #.# #.# #.# .#.', W: '#.# #.# ### ### #.#', X: '#.# #.# .#. #.# #.#',
  Y: '#.# #.# .#. .#. .#.', Z: '### ..# .#. #.. ###', '0': '### #.# #.# #.# ###', '1': '.#. ##. .#. .#. ###',
  '2': '##. ..# .#. #.. ###', '3': '##. ..# .#. ..# ##.', '4': '#.# #.# ### ..# ..#',
  '5': '### #.. ##. ..# ##.', '6': '.## #.. ### #.# ###', '7': '### ..# .#. .#. .#.',
  '8': '### #.# ### #.# ###', '9': '### #.# ### ..# ##.', ' ': '... ... ... ... ...',
  '.': '... ... ... ... .#.', ':': '... .#. ... .#. ...', '+': '... .#. ### .#. ...',
  '-': '... ... ### ... ...', '@': '.#. #.# ### #.. .##', '/': '..# ..# .#. #.. #..',
  '=': '... ### ... ### ...', '%': '#.# ..# .#. #.. #.#', '(': '.#. #.. #.. #.. .#.',
  ')': '.#. ..# ..# ..# .#.', '|': '.#. .#. .#. .#. .#.',
}

export class Canvas {
  readonly rgb: Uint8Array

  constructor(
    readonly width: number,
    readonly height: number,
    background: Rgb,
  ) {
    this.rgb = new Uint8Array(width * height * 3)
    this.fill(0, 0, width, height, background)
  }

  fill(x: number, y: number, w: number, h: number, color: Rgb): void {
    for (let row = Math.max(0, y); row < Math.min(this.height, y + h); row++) {
      for (let col = Math.max(0, x); col < Math.min(this.width, x + w); col++) {
        const at = (row * this.width + col) * 3
        this.rgb[at] = color[0]
        this.rgb[at + 1] = color[1]
        this.rgb[at + 2] = color[2]
      }
    }
  }

  /** Upper-case text in the 3×5 font, each font pixel `scale` pixels; unknown characters are blank. */
  text(x: number, y: number, text: string, scale: number, color: Rgb): void {
    let left = x
    for (const char of text.toUpperCase()) {
      const rows = (GLYPHS[char] ?? GLYPHS[' ']!).split(' ')
      rows.forEach((row, dy) => {
        for (let dx = 0; dx < 3; dx++) if (row[dx] === '#') this.fill(left + dx * scale, y + dy * scale, scale, scale, color)
      })
      left += 4 * scale
    }
  }

  png(): Buffer {
    return encodePng(this.width, this.height, this.rgb)
  }
}

export const textWidth = (text: string, scale: number): number => text.length * 4 * scale
export const TEXT_HEIGHT_UNITS = 5
