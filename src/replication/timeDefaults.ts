// The sensor-time bounds a new group (or an embedded mount) gets when none are given: in a
// file of their own, so the CLI shows them in its help without loading the config code.

/** Δ (the most a sensor stamp may lag platform time) and δ (writer/platform clock skew bound). */
export const TIME_DEFAULTS = {
  sensorLagMaxMs: 5_000,
  clockSkewMaxMs: 50,
} as const
