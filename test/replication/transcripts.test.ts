// Readable protocol tests: each file of test/replication/testdata/ is a scripted scenario of a
// group running the production member runtime in the simulated world (src/testing/transcript.ts
// says what the commands do), with what happened after each command. The test replays every
// script and compares; FFFS_REWRITE=1 rewrites the files with what happened instead (review the
// diff: a transcript is the protocol's documentation).

import { readdirSync, readFileSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { describe, expect, it } from 'vitest'
import { formatTranscript, parseTranscript, runTranscript } from '../../src/testing/transcript.js'

const here = path.dirname(fileURLToPath(import.meta.url))
const dir = path.join(here, 'testdata')
const REWRITE = process.env['FFFS_REWRITE'] === '1'

describe('protocol transcripts', () => {
  for (const name of readdirSync(dir).filter((f) => f.endsWith('.txt')).sort()) {
    it(name, async () => {
      const file = path.join(dir, name)
      const cases = parseTranscript(readFileSync(file, 'utf8'))
      const outputs = await runTranscript(cases)
      if (REWRITE) {
        writeFileSync(file, formatTranscript(cases, outputs))
        return
      }
      cases.forEach((c, i) => expect(outputs[i], `${name}: ${c.command}`).toBe(c.expected))
    }, 120_000)
  }
})
