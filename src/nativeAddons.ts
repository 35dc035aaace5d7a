// Where the native addons built from native/ are (native/build/Release/NAME.node): found by
// walking up from this module, so it works from src/ (vitest) and from dist/src/ (the CLI).

import { existsSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

export const NATIVE_BUILD_DIR = join('native', 'build', 'Release')

/** The built addon's path, or undefined when it is not built. */
export function findNativeAddon(fileName: string): string | undefined {
  let dir = dirname(fileURLToPath(import.meta.url))
  for (let depth = 0; depth < 6; depth++, dir = dirname(dir)) {
    const candidate = join(dir, NATIVE_BUILD_DIR, fileName)
    if (existsSync(candidate)) return candidate
  }
  return undefined
}
