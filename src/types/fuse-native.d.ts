// The part of fuse-native's API fffs uses (the package ships no types).
declare module 'fuse-native' {
  type Callback = (...args: unknown[]) => void
  export interface FuseOptions {
    mkdir?: boolean
    force?: boolean
    timeout?: number | false
    displayFolder?: boolean
    [option: string]: unknown
  }
  class Fuse {
    constructor(mountpoint: string, ops: Record<string, Callback>, options?: FuseOptions)
    readonly mnt: string
    mount(cb: (err: Error | null) => void): void
    unmount(cb: (err: Error | null) => void): void
    protected _fuseOptions(): string
    static unmount(mountpoint: string, cb: (err: Error | null) => void): void
  }
  export default Fuse
}
