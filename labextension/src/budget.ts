/**
 * The team's GPU budget in the status bar: "GPU 12.5 h left of 200" (`GET academy/api/budget`,
 * which the server keeps for the hub's refresh period, so polling never reaches Slurm). Warning
 * colour under 10 % left; the tooltip says used and reserved. Hidden for a user without a budget
 * (404 or status "none"); "GPU budget unavailable" when the hub cannot tell.
 */
import { IStatusBar } from '@jupyterlab/statusbar';
import { Widget } from '@lumino/widgets';

import { APIError, request, every } from './api';

export interface IBudget {
  status: 'ok' | 'unavailable' | 'none';
  account: string;
  limit_gpu_hours: number | null;
  used_gpu_hours: number | null;
  reserved_gpu_hours: number | null;
  left_gpu_hours: number | null;
  message: string;
  refresh_seconds: number;
}

function h(value: number | null): string {
  const v = value ?? 0;
  return v < 10 ? v.toFixed(2).replace(/\.?0+$/, '') || '0' : v < 100 ? v.toFixed(1) : v.toFixed(0);
}

export function describeBudget(b: IBudget): string {
  return b.status === 'ok' ? `GPU ${h(b.left_gpu_hours)} h left of ${h(b.limit_gpu_hours)}` : 'GPU budget unavailable';
}

export function addBudget(statusBar: IStatusBar | null): void {
  if (!statusBar) {
    return;
  }
  const item = new Widget();
  item.addClass('academy-budget');
  item.hide();
  statusBar.registerStatusItem('academy-lab:budget', { item, align: 'left', rank: 2 });
  let refresh = 120;
  every(
    () => Math.min(Math.max(30, refresh), 600),
    async () => {
      try {
        const b = await request<IBudget>('academy/api/budget');
        refresh = b.refresh_seconds || 120;
        if (b.status === 'none') {
          item.hide();
          return true;
        }
        item.node.textContent = describeBudget(b);
        item.node.title =
          b.status === 'ok'
            ? `Slurm account ${b.account}: ${h(b.used_gpu_hours)} GPU-hours used, ` +
              `${h(b.reserved_gpu_hours)} reserved by running servers and jobs, ${h(b.left_gpu_hours)} left of ${h(b.limit_gpu_hours)}.`
            : b.message;
        const low = b.status === 'ok' && (b.limit_gpu_hours ?? 0) > 0 && (b.left_gpu_hours ?? 0) < 0.1 * (b.limit_gpu_hours ?? 0);
        item.toggleClass('academy-budget-warn', low || b.status === 'unavailable');
        item.show();
        return true;
      } catch (err) {
        item.hide();
        return !(err instanceof APIError && err.status === 404);
      }
    }
  );
}
