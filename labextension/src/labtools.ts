/**
 * Display of the `academy.labtools` endpoints: session resources in the status bar, notices as
 * notifications (each once), and "New Python environment". Each part hides itself when its
 * endpoint answers 404 (a server without that extension).
 */
import { JupyterFrontEnd } from '@jupyterlab/application';
import { Dialog, InputDialog, Notification, showDialog } from '@jupyterlab/apputils';
import { ILauncher } from '@jupyterlab/launcher';
import { IStatusBar } from '@jupyterlab/statusbar';
import { pythonIcon } from '@jupyterlab/ui-components';
import { Widget } from '@lumino/widgets';

import { APIError, INotice, IResources, every, request } from './api';
import { CATEGORY } from './landing';

const NEW_ENV = 'academy:new-environment';
const ENV_NAME = /^[A-Za-z][A-Za-z0-9_-]{0,31}$/;
const SEEN_KEY = 'academy-lab:notices-seen';

const gib = (bytes: number) => `${(bytes / 2 ** 30).toFixed(1)} GiB`;
const stopOn404 = (err: unknown) => !(err instanceof APIError && err.status === 404);

export function describeResources(r: IResources): string {
  const mem = `Mem ${gib(r.memory.used_bytes)}${r.memory.limit_bytes ? ` / ${gib(r.memory.limit_bytes)}` : ''}`;
  const cpu = `CPU ${Math.round(r.cpu.percent)}%${r.cpu.limit_cores ? ` of ${r.cpu.limit_cores}` : ''}`;
  const gpus = r.gpus.length
    ? r.gpus
        .map(
          g =>
            `GPU${g.index}${g.mig ? ' (MIG)' : ''} ${g.utilization_percent === null ? '?' : Math.round(g.utilization_percent)}% ` +
            `${gib(g.memory_used_bytes)} / ${gib(g.memory_total_bytes)}`
        )
        .join(' · ')
    : r.gpu_note || 'no GPU';
  return `${mem} · ${cpu} · ${gpus}`;
}

export function addResources(statusBar: IStatusBar | null): void {
  if (!statusBar) {
    return;
  }
  const item = new Widget();
  item.addClass('academy-resources');
  item.hide();
  statusBar.registerStatusItem('academy-lab:resources', { item, align: 'left', rank: 0 });
  every(
    () => 5,
    async () => {
      try {
        const r = await request<IResources>('academy/api/resources');
        item.node.textContent = describeResources(r);
        item.node.title = r.gpus.map(g => `${g.name}${g.energy_joules !== null ? `: ${Math.round(g.energy_joules / 1000)} kJ this session` : ''}`).join('\n');
        item.show();
        return true;
      } catch (err) {
        item.hide();
        return stopOn404(err);
      }
    }
  );
}

export function addNotices(): void {
  const seen = new Set<string>(JSON.parse(window.localStorage.getItem(SEEN_KEY) || '[]'));
  every(
    () => 30,
    async () => {
      try {
        const { notices } = await request<{ notices: INotice[] }>('academy/api/notices');
        for (const n of notices) {
          if (seen.has(n.id)) {
            continue;
          }
          seen.add(n.id);
          const level = ['info', 'warning', 'error'].includes(n.level) ? n.level : 'info';
          Notification.emit(n.message, level, { autoClose: level === 'info' ? 10000 : false });
        }
        window.localStorage.setItem(SEEN_KEY, JSON.stringify([...seen].slice(-200)));
        return true;
      } catch (err) {
        return stopOn404(err);
      }
    }
  );
}

export function addEnvironments(app: JupyterFrontEnd, launcher: ILauncher | null): void {
  let available = false;
  app.commands.addCommand(NEW_ENV, {
    label: 'New Python environment',
    icon: pythonIcon,
    caption: 'Your own environment on top of the shared one, as a notebook kernel',
    isVisible: () => available,
    execute: async () => {
      const name = await InputDialog.getText({
        title: 'New Python environment',
        label: 'Name (letters, digits, - and _):',
        placeholder: 'myenv'
      });
      if (!name.button.accept || !name.value) {
        return;
      }
      if (!ENV_NAME.test(name.value)) {
        await showDialog({ title: 'Not a valid name', body: `“${name.value}”: use letters, digits, - and _ (start with a letter).`, buttons: [Dialog.okButton()] });
        return;
      }
      try {
        const r = await request<{ name: string; status: string }>('academy/api/envs', {
          method: 'POST',
          body: JSON.stringify({ name: name.value, packages: [] })
        });
        Notification.success(`Environment ${r.name}: ${r.status}. It appears as a kernel in the Launcher when ready.`, { autoClose: 10000 });
      } catch (err) {
        Notification.error(`Environment ${name.value} was not created: ${err instanceof APIError ? err.message : err}`, { autoClose: false });
      }
    }
  });
  void request('academy/api/envs')
    .then(() => {
      available = true;
      app.commands.notifyCommandChanged(NEW_ENV);
      launcher?.add({ command: NEW_ENV, category: CATEGORY, rank: 10 });
    })
    .catch(() => undefined);
}
