// The help texts: one per command, and the overview.
import { PROFILE_NAMES } from '../profiles';
import { EXIT_TABLE } from './exit-codes';

const PROFILES = `Profiles: ${PROFILE_NAMES.join(', ')} (lib/profiles.ts), rendered into dist/<profile>/ by npm run synth.`;
const TOOLS = 'Runs kubectl and helm from PATH against the cluster of KUBECONFIG (or ~/.kube/config).';
/** The options every command takes, as its help lists them. */
const CLUSTER_OPTIONS = `  --context <c>      kubeconfig context for every kubectl (--context) and helm (--kube-context)
                     call; default: the current context
  -n, --namespace <ns>
                     must be the namespace dist/<p>/ is rendered for (exit 1 otherwise): a
                     guard against acting on the wrong one`;

export const USAGE: Record<string, string> = {
  main: `Usage: learnflow-postgres <command> --profile <profile> [options]

Deploys and operates LearnFlow's PostgreSQL from the manifests in dist/<profile>/.

Commands:
  deploy   --profile <p> [--upgrade | --skip-existing] [--dry-run] [--timeout <s>]
           preflight, namespace, manifests and credentials, Helm release, readiness,
           migrations, verification
  status   --profile <p> [--json]        phase, pods, claim, database, migrations, connection
  verify   --profile <p> [--rerun] [--timeout <s>]
           the four health stages
  backup   --profile <p> [--dry-run] [--timeout <s>]
           a backup now, from the dump CronJob
  restore  --profile <p> <file> [--dry-run] [--timeout <s>]
           restore a dump, from the restore template
  restore  --profile <p> --to <time|latest> [--from-offsite] [--dry-run] [--timeout <s>]
           recover the database to a point in time, from the point-in-time restore template

Every command also takes --context <c> and --namespace <ns> (see a command's --help).
learnflow-postgres --version prints the version, the chart versions and the Kubernetes versions.
Run learnflow-postgres <command> --help for a command's details.
${PROFILES}
${TOOLS}

${EXIT_TABLE}
`,
  deploy: `Usage: learnflow-postgres deploy --profile <p> [--upgrade | --skip-existing] [--dry-run] [--timeout <s>]

Deploys dist/<p>/ in 7 steps, the README's kubectl and helm flow:
  1 preflight: cluster reachable (exit 2), helm 3.8+ on PATH (exit 3), the storage class the
    volumes need exists, or a default one when the profile names none (exit 6)
  2 namespace from dist/ (an existing one is fine)
  3 kubectl apply -f dist/<p>/, then the credentials Job completes (failed: exit 1)
  4 helm upgrade --install of the pinned chart with dist/<p>/helm/postgresql-values.yaml
    (a Bound data claim is reused)
  5 the chart's pod is Ready
  6 the migration Job completes (failed: exit 7, or 8 when it could not connect)
  7 the verification Job completes (failed: exit 5, or 8 when it could not connect)
Each wait that runs out is exit 4. Running deploy again continues where it stopped.

Options:
  --profile <p>      ${PROFILE_NAMES.join(' | ')} (required)
  --upgrade          when the release exists, upgrade it (default)
  --skip-existing    when the release exists, leave it as it is
  --dry-run          print every command deploy would run, in order; contacts nothing
  --timeout <s>      limit of each wait in seconds (default: credentials 180, pod 300,
                     migrations 600, verification 900)
${CLUSTER_OPTIONS}
  -h, --help         this text

${EXIT_TABLE}
`,
  status: `Usage: learnflow-postgres status --profile <p> [--json]

Reads the namespace's StatefulSet, pods, claims and Jobs (read-only, no helm) and prints:
  phase                NotDeployed (no namespace, or none of the chart's or our objects),
                       Failed (a Job of dist/ failed), Ready (every pod Ready, the data claim
                       Bound, database accessible, migrations complete), else Deploying
  pods_ready/total     the chart's pods with Ready=True / the StatefulSet's replicas
  pvc_bound            the data claim's phase is Bound
  database_accessible  the primary pod is Ready (its probe is pg_isready) and the verification
                       Job of dist/ completed (it logged in through the Service)
  migrations           applied = the plan once the migration Job completed; unknown before
  connection_string    without the password; last_updated: the newest change seen
Exit 0 whenever the cluster could be read (whatever the phase), 2 when it could not. With
--json the output is always one JSON object: on any failure {"error": …, "exit_code": …}.
An Argo CD-managed deployment (no Helm release) reads the same way.

Options:
  --profile <p>   ${PROFILE_NAMES.join(' | ')} (required)
  --json          the status as JSON, for machines
${CLUSTER_OPTIONS}
  -h, --help      this text
`,
  verify: `Usage: learnflow-postgres verify --profile <p> [--rerun] [--timeout <s>]

The four health stages, each reported:
  1 release        helm history (its newest revision): deployed, and the chart it runs
  2 pod readiness  the chart's pod is Ready
  3 database ping  } the verification Job of dist/: Complete passes both; a pod that exited 8
  4 schema         } failed stage 3, one that exited 5 failed stage 4
Exit 0 all passed, 8 stage 3 could not connect, 5 any other failed stage, 2 cluster not
accessible, 3 helm missing, 4 the wait ran out.

Options:
  --profile <p>    ${PROFILE_NAMES.join(' | ')} (required)
  --rerun          delete the verification Job and create it again from dist/, then wait:
                   checks now instead of reporting the last result
  --timeout <s>    wait this long for an unfinished verification Job (default 0, with
                   --rerun 900)
${CLUSTER_OPTIONS}
  -h, --help       this text
`,
  backup: `Usage: learnflow-postgres backup --profile <p> [--dry-run] [--timeout <s>]

Takes a backup now: kubectl create job <fullname>-backup-<time> --from=cronjob/<fullname>-dump
(the dump CronJob, the same command as the schedule), then waits for it.
Needs backup.enabled in the profile (exit 1 otherwise). Exit 0 done, 1 the Job failed, 8 it could
not connect, 4 the wait ran out, 2 cluster not accessible.

Options:
  --profile <p>    ${PROFILE_NAMES.join(' | ')} (required)
  --dry-run        print the commands; contacts nothing
  --timeout <s>    wait this long for the Job (default 3600)
${CLUSTER_OPTIONS}
  -h, --help       this text
`,
  restore: `Usage: learnflow-postgres restore --profile <p> <file> [--dry-run] [--timeout <s>]
       learnflow-postgres restore --profile <p> --to <time|latest> [--from-offsite] [--dry-run] [--timeout <s>]

Restores <file>, a dump's name on the backup volume (learnflow-<UTC time>.dump), into the
database, all or nothing: a Job from the suspended template <fullname>-backup-restore with
RESTORE_FILE=<file>, as the README's pipeline makes it. Scale your applications down first.
Needs backup.enabled in the profile (exit 1 otherwise). Exit 0 restored, 1 the Job failed (no such
dump, or the restore was rolled back), 8 it could not connect, 4 the wait ran out, 2 cluster not
accessible.

With --to, recovers the whole database to a UTC time (YYYY-MM-DDTHH:MM:SS[.ffffff]Z) or to the
latest archived state: stops the StatefulSet, runs a Job from <fullname>-pitr-restore with
RESTORE_TARGET (and RESTORE_SOURCE=offsite with --from-offsite: the object store's copies), starts
the StatefulSet again. Needs pitr.enabled. A refused or failed restore changes nothing (exit 1,
8 when the object store was unreachable); the database is started again as it was.

Options:
  --profile <p>    ${PROFILE_NAMES.join(' | ')} (required)
  --dry-run        print the commands; contacts nothing
  --timeout <s>    wait this long for the Job (default 3600)
  --to <time>      a point in time ('latest' or a UTC time) instead of a dump
  --from-offsite   with --to: fetch the base backup and WAL from the object store first
${CLUSTER_OPTIONS}
  -h, --help       this text
`,
};
