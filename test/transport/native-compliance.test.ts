// The shared transport compliance suite against the native libfabric transport (tcp provider
// on loopback): several real transports in this process, each with its own fabric, endpoints
// and completion thread. A crash here is an abort (silence, no goodbye), so it exercises
// heartbeat suspicion; native.test.ts covers kill -9 of real processes.
import { transportCompliance } from './compliance.js'
import { inProcessGroups } from './helpers/native-cluster.js'

// Defaults: 10 KiB slots, 64-slot windows, 1 MiB blocks, 100 ms heartbeats, 1 s suspicion.
transportCompliance('native (defaults)', inProcessGroups(), { memberCounts: [3], large64MiB: true })
// Tight: windows and block pipelines are crossed often; five members make a two-level tree.
transportCompliance(
  'native (tight)',
  inProcessGroups({ smcSlotSizeBytes: 100, smcWindowSlots: 3, rdmcBlockSizeBytes: 1000, heartbeatIntervalMs: 30, suspectTimeoutMs: 600 }),
  { memberCounts: [5], eventuallyMs: 20_000 },
)
// SMC slots announced by remote CQ data, as verbs does it (on tcp the default finds them by
// their trailer): the path a verbs deployment takes, run here on tcp.
transportCompliance(
  'native (SMC by CQ data)',
  inProcessGroups({ smcCqData: true, smcSlotSizeBytes: 100, smcWindowSlots: 3, heartbeatIntervalMs: 30, suspectTimeoutMs: 600 }),
  { memberCounts: [3], eventuallyMs: 20_000 },
)
