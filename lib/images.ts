import { CHART_RELEASES, ImageRef } from './chart';
import { DeploymentConfig } from './config';
import { DEFAULT_PGBOUNCER_IMAGE } from './pooling/props';

/** The image of the credentials bootstrap when none is given: it needs `sh` and `kubectl`. */
export const DEFAULT_KUBECTL_IMAGE: ImageRef = { registry: 'docker.io', repository: 'bitnamilegacy/kubectl', tag: '1.33.4' };

/** The images every part of a deployment runs, after the mirror and per-image overrides. */
export interface DeploymentImages {
  readonly postgresql: ImageRef;
  readonly osShell: ImageRef;
  readonly kubectl: ImageRef;
  /** PgBouncer's, with `pooler` (pooler.image over the default). */
  readonly pgbouncer: ImageRef;
}

export function deploymentImages(config: DeploymentConfig): DeploymentImages {
  const chart = CHART_RELEASES[config.chartVersion].images;
  const mirror = (image: ImageRef): ImageRef => ({ ...image, registry: config.imageRegistry ?? image.registry });
  return {
    postgresql: mirror({
      registry: config.image.registry ?? chart.postgresql.registry,
      repository: config.image.repository ?? chart.postgresql.repository,
      tag: config.image.tag ?? chart.postgresql.tag,
    }),
    osShell: mirror(chart.osShell),
    kubectl: mirror(config.kubectlImage),
    pgbouncer: mirror({ ...DEFAULT_PGBOUNCER_IMAGE, ...config.pooler?.image }),
  };
}

/** `registry/repository:tag`, the form a pod spec takes. */
export function imageName(image: ImageRef): string {
  return `${image.registry}/${image.repository}:${image.tag}`;
}
