/**
 * Typed calls to the learner's own server: `academy.lab` (session, walltime) and, once merged,
 * `academy.labtools` (resources, notices, environments). Auth and XSRF come from ServerConnection.
 */
import { URLExt } from '@jupyterlab/coreutils';
import { ServerConnection } from '@jupyterlab/services';

export interface IWalltime {
  /** Seconds since the epoch when the session ends, or null when nothing ends it. */
  end: number | null;
  hours: number | null;
  max_hours: number | null;
  source: 'slurm' | 'local' | 'none';
  extendable: boolean;
}

export interface ISession {
  /** The server's clock, so a skewed browser clock does not move the countdown. */
  now: number;
  walltime: IWalltime;
  help: { url: string; email: string; ask_trainer_url: string };
  welcome: string;
  curriculum: string;
  poll_seconds: number;
}

export interface IResources {
  memory: { used_bytes: number; limit_bytes: number | null };
  cpu: { percent: number; limit_cores: number | null };
  gpus: Array<{
    index: number;
    name: string;
    utilization_percent: number | null;
    memory_used_bytes: number;
    memory_total_bytes: number;
    energy_joules: number | null;
    mig: boolean;
  }>;
  gpu_note: string | null;
}

export interface INotice {
  id: string;
  level: 'info' | 'warning' | 'error';
  message: string;
  created: string;
}

/** An endpoint answered with an error; `status` 404 means "not on this server". */
export class APIError extends Error {
  constructor(
    readonly status: number,
    message: string
  ) {
    super(message);
  }
}

export async function request<T>(path: string, init: RequestInit = {}): Promise<T> {
  const settings = ServerConnection.makeSettings();
  const url = URLExt.join(settings.baseUrl, path);
  const response = await ServerConnection.makeRequest(url, init, settings);
  const text = await response.text();
  let body: any = null;
  try {
    body = text ? JSON.parse(text) : null;
  } catch {
    body = null;
  }
  if (!response.ok) {
    const message = (body && (body.message || body.reason)) || `${response.status} ${response.statusText}`;
    throw new APIError(response.status, String(message));
  }
  return body as T;
}

/** Call `poll` now and then every `seconds`; stop for good when it returns false. */
export function every(seconds: () => number, poll: () => Promise<boolean>): void {
  const tick = async () => {
    let again = true;
    try {
      again = await poll();
    } catch (err) {
      console.warn('academy-lab:', err);
    }
    if (again) {
      window.setTimeout(tick, seconds() * 1000);
    }
  };
  void tick();
}
