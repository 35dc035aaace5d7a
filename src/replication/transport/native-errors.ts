// Operating errors of the native transport, each with a stable code. Bugs (bad column names,
// wrong argument types) are thrown as TypeError/RangeError instead.

export type TransportErrorCode =
  | 'TRANSPORT_CONFIG' // invalid TransportConfig
  | 'PROVIDER_UNAVAILABLE' // libfabric or the requested provider is missing
  | 'NATIVE_MISSING' // the addon was not built
  | 'PORT_IN_USE' // bootstrap port taken
  | 'SCHEMA_MISMATCH' // members disagree on the SST schema or transport sizes
  | 'CONNECT_TIMEOUT' // not every peer connected within connectTimeoutMs
  | 'STOPPED' // operation on a stopped transport

export class TransportError extends Error {
  readonly code: TransportErrorCode
  constructor(code: TransportErrorCode, message: string) {
    super(message)
    this.name = 'TransportError'
    this.code = code
  }
}
