// What the verification Job found about each read replica, as verify.sh writes it and `status`
// reads it back. The Job writes one line per replica to its termination message file; the
// kubelet copies that file into the pod's status (`state.terminated.message`), so the API server
// holds the last check's findings as long as the Job's pod exists: no log, no exec.

/** The verification Job's container, whose termination message `status` reads. */
export const VERIFY_CONTAINER = 'verify';

/** Kubernetes' default `terminationMessagePath`: the kubelet mounts it writable in every container. */
export const TERMINATION_MESSAGE_PATH = '/dev/termination-log';

/**
 * A replica's state at the check: `streaming` within the bound; `lagging` past it; `not-in-recovery`
 * (a primary, promoted?); `no-wal` (replayed nothing yet); `unreachable` (no answer, or refused).
 */
export const REPLICA_STATES = ['streaming', 'lagging', 'not-in-recovery', 'no-wal', 'unreachable'] as const;
export type ReplicaState = (typeof REPLICA_STATES)[number];

export interface ReplicaFinding {
  /** The host the Job checked: the replica pod's own name, `<pod>.<headless service>.<namespace>.svc`. */
  readonly host: string;
  readonly port: number;
  readonly state: ReplicaState;
  /** Bytes of WAL behind the primary's position read just before; null when not measured. */
  readonly lagBytes: number | null;
}

/** The line verify.sh writes (`replica <host>:<port> <state> <lag bytes or ->`), as a pattern. */
const LINE = new RegExp(`^replica (\\S+):(\\d+) (${REPLICA_STATES.join('|')}) (\\d+|-)$`);

/** The replica lines of a termination message; other lines are not ours and are skipped. */
export function parseReplicaReport(message: string): ReplicaFinding[] {
  return message.split('\n').flatMap((line) => {
    const m = LINE.exec(line.trim());
    return m ? [{ host: m[1], port: Number(m[2]), state: m[3] as ReplicaState, lagBytes: m[4] === '-' ? null : Number(m[4]) }] : [];
  });
}
