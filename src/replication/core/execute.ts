// The one executor of the core's actions: row writes and sends go to the epoch's transport, the
// rest to the runtime's effects. The member runtime and the tests that drive cores directly use
// it (the simulation runs the member runtime itself), so what a CoreAction means is written once.

import type { Transport } from '../transport/types.js'
import type { CoreAction } from './group.js'

type ActionOf<K extends CoreAction['kind']> = Extract<CoreAction, { kind: K }>

/** What the runtime does with the actions that are not the transport's. */
export interface CoreEffects {
  /** Push the own row (the member runtime coalesces pushes per turn, and holds a lazy one back a little; see member.ts). */
  push(lazy: boolean): void
  /** A send failed (a stopped transport): nothing to do but report it. */
  sendFailed(err: Error): void
  deliver(action: ActionOf<'deliver'>): void
  persistTrim(action: ActionOf<'persistTrim'>): void
  persistAccepted(action: ActionOf<'persistAccepted'>): void
  installView(action: ActionOf<'installView'>): void
  reply(action: ActionOf<'reply'>): void
  reject(action: ActionOf<'reject'>): void
  excluded(action: ActionOf<'excluded'>): void
}

/**
 * Executes `actions` in order. `current` is asked before each: once it says no (an effect ended
 * the epoch these actions belong to), the rest belongs to no one and is dropped. `observe` sees
 * each action executed, before it runs.
 */
export function executeCoreActions(actions: readonly CoreAction[], transport: Transport, effects: CoreEffects, current: () => boolean = () => true, observe?: (action: CoreAction) => void): void {
  for (const action of actions) {
    if (!current()) return
    observe?.(action)
    switch (action.kind) {
      case 'setU64':
        transport.setU64(action.column, action.value, action.index)
        break
      case 'setBool':
        transport.setBool(action.column, action.value, action.index)
        break
      case 'push':
        effects.push(action.lazy === true)
        break
      case 'send': {
        // The core encodes every send afresh and never touches the bytes again: hand them over
        // (a transport may then deliver this very buffer to the sender instead of a copy).
        const sent = action.large ? transport.sendLarge(action.bytes, { handOver: true }) : transport.sendSmall(action.bytes)
        sent.catch((err: Error) => effects.sendFailed(err))
        break
      }
      case 'deliver':
        effects.deliver(action)
        break
      case 'persistTrim':
        effects.persistTrim(action)
        break
      case 'persistAccepted':
        effects.persistAccepted(action)
        break
      case 'installView':
        effects.installView(action)
        break
      case 'reply':
        effects.reply(action)
        break
      case 'reject':
        effects.reject(action)
        break
      case 'excluded':
        effects.excluded(action)
        break
    }
  }
}
