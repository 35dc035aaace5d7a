// `fffs serve`'s environment for its members: the system clock, the real disk, libfabric, TCP
// to the others, and the store tuned for this host (the page cache, O_DIRECT).

import { nodeDisk } from '../../store/disk.js'
import { systemClock } from '../clock.js'
import { memberById, type GroupConfig } from '../config.js'
import { groupSchema } from '../core/schema.js'
import { NativeTransport, preloadNativeTransport } from '../transport/native.js'
import { TRANSPORT_DEFAULTS } from '../transport/types.js'
import { MEMBER_TIMING, type MemberEnv } from './env.js'
import { WirePeers } from './peers.js'

const LOG_CACHE_KEEP_BYTES = 32 * 1024 * 1024 // newest synced log bytes kept in the page cache (SegmentLog.dropSyncedPages)

/** `fffs serve`'s environment: the system clock, the real disk, libfabric, TCP to the others. */
export function nativeEnv(config: GroupConfig, id: number, log: (line: string) => void): MemberEnv {
  preloadNativeTransport()
  return {
    clock: systemClock,
    disk: nodeDisk,
    newTransport: (plan) => {
      const members = plan.memberIds.map((memberId) => memberById(config, memberId))
      return new NativeTransport({
        selfId: id,
        members: members.map((m) => ({ id: m.id, host: m.host, port: m.transportPort })),
        schema: groupSchema(members.length),
        provider: config.transport.provider,
        ...(config.transport.iface !== undefined ? { iface: config.transport.iface } : {}),
        smcSlotSizeBytes: TRANSPORT_DEFAULTS.smcSlotSizeBytes,
        smcWindowSlots: TRANSPORT_DEFAULTS.smcWindowSlots,
        rdmcBlockSizeBytes: TRANSPORT_DEFAULTS.rdmcBlockSizeBytes,
        heartbeatIntervalMs: config.transport.heartbeatIntervalMs,
        suspectTimeoutMs: config.transport.suspectTimeoutMs,
        connectTimeoutMs: config.transport.connectTimeoutMs,
        latencySpinUs: config.transport.latencySpinUs,
      })
    },
    peers: new WirePeers(config, { log, connectTimeoutMs: MEMBER_TIMING.peerRequestTimeoutMs }),
    instance: String(process.pid),
    exit: (code) => process.exit(code),
    timing: MEMBER_TIMING,
    // Blobs arrive in page-aligned mappings (RDMC): written with O_DIRECT, without a copy.
    tuneStore: (store) => void store.useHostDisk({ cacheKeepBytes: LOG_CACHE_KEEP_BYTES }),
  }
}
