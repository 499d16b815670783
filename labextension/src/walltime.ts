/**
 * Walltime on screen: a status-bar countdown to the session's end, warnings at 15 and 5 minutes,
 * every open document with unsaved changes saved at 5 and at 1 minute, and "More time".
 */
import { JupyterFrontEnd } from '@jupyterlab/application';
import { Dialog, Notification, showDialog } from '@jupyterlab/apputils';
import { DocumentWidget } from '@jupyterlab/docregistry';
import { IStatusBar } from '@jupyterlab/statusbar';
import { Widget } from '@lumino/widgets';

import { APIError, ISession, IWalltime, every, request } from './api';

/** Minutes before the end at which the learner is warned, and at which work is saved. */
const WARN_AT = [15, 5];
const SAVE_AT = [5, 1];
export const EXTEND_COMMAND = 'academy:more-time';

export function formatLeft(seconds: number): string {
  const s = Math.max(0, Math.floor(seconds));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const pad = (n: number) => String(n).padStart(2, '0');
  return `${h}:${pad(m)}:${pad(s % 60)}`;
}

/** Save every open document with unsaved changes; returns how many were saved. */
export async function saveDirty(app: JupyterFrontEnd): Promise<number> {
  const saves: Promise<void>[] = [];
  for (const widget of app.shell.widgets('main')) {
    if (widget instanceof DocumentWidget && widget.context.model.dirty && !widget.context.model.readOnly) {
      saves.push(widget.context.save());
    }
  }
  const results = await Promise.allSettled(saves);
  return results.filter(r => r.status === 'fulfilled').length;
}

export class WalltimeClock {
  private walltime: IWalltime | null = null;
  private offset = 0; // server clock minus browser clock, in seconds
  private done = new Set<string>();
  readonly node: Widget;

  constructor(
    private app: JupyterFrontEnd,
    statusBar: IStatusBar | null
  ) {
    this.node = new Widget();
    this.node.addClass('academy-walltime');
    this.node.node.title = 'Time left in this session (click for more time)';
    this.node.node.addEventListener('click', () => void app.commands.execute(EXTEND_COMMAND));
    this.node.hide();
    if (statusBar) {
      statusBar.registerStatusItem('academy-lab:walltime', { item: this.node, align: 'left', rank: -1 });
    }
  }

  /** Seconds left by the server's clock, or null when the session has no end. */
  left(): number | null {
    if (!this.walltime || this.walltime.end === null) {
      return null;
    }
    return this.walltime.end - (Date.now() / 1000 + this.offset);
  }

  get current(): IWalltime | null {
    return this.walltime;
  }

  update(session: ISession): void {
    const before = this.walltime?.end ?? null;
    this.offset = session.now - Date.now() / 1000;
    this.walltime = session.walltime;
    if (before !== null && session.walltime.end !== null && session.walltime.end > before + 30) {
      // More time (ours or an admin's): the warnings and saves may be due again.
      this.done.clear();
    }
    this.tick();
  }

  tick(): void {
    const left = this.left();
    if (left === null) {
      this.node.hide();
      return;
    }
    this.node.show();
    this.node.node.textContent = `${formatLeft(left)} left`;
    this.node.toggleClass('academy-walltime-low', left <= 15 * 60);
    for (const minutes of SAVE_AT) {
      this.once(`save-${minutes}`, left <= minutes * 60 && left > 0, () => void this.save(minutes));
    }
    // Only the most urgent warning that is due, so a session opened late is not warned twice.
    const due = WARN_AT.filter(m => left <= m * 60 && left > 0);
    if (due.length) {
      const minutes = Math.min(...due);
      this.once(`warn-${minutes}`, true, () => this.warn(minutes));
      due.forEach(m => this.done.add(`warn-${m}`));
    }
  }

  private once(key: string, condition: boolean, action: () => void): void {
    if (condition && !this.done.has(key)) {
      this.done.add(key);
      action();
    }
  }

  private warn(minutes: number): void {
    const max = this.walltime?.max_hours ?? 0;
    const canExtend = !!this.walltime?.extendable && (this.walltime?.hours ?? max) < max;
    Notification.warning(
      `Your session ends in less than ${minutes} minutes. Open notebooks are saved automatically at 5 and 1 minute before the end.`,
      {
        autoClose: false,
        actions: canExtend
          ? [{ label: 'More time', callback: () => void this.app.commands.execute(EXTEND_COMMAND) }]
          : []
      }
    );
  }

  private async save(minutes: number): Promise<void> {
    const saved = await saveDirty(this.app);
    if (saved) {
      Notification.info(`Saved ${saved} open document(s): ${minutes} minute(s) of walltime left.`, {
        autoClose: 8000
      });
    }
  }
}

/** The "More time" dialog: one more hour, within the profile's maximum; the hub decides. */
export async function askForMoreTime(clock: WalltimeClock, refresh: () => Promise<void>): Promise<void> {
  const w = clock.current;
  if (!w || w.end === null || !w.extendable || w.max_hours === null || w.hours === null) {
    await showDialog({
      title: 'More time',
      body: 'This session cannot be extended from here.',
      buttons: [Dialog.okButton()]
    });
    return;
  }
  const room = w.max_hours - w.hours;
  if (room <= 0) {
    await showDialog({
      title: 'More time',
      body: `This session already has ${w.hours} h, the most its profile allows (${w.max_hours} h). Save your work and start a new session later.`,
      buttons: [Dialog.okButton()]
    });
    return;
  }
  const choice = await showDialog({
    title: 'More time',
    body: `Your session has ${w.hours} h of at most ${w.max_hours} h. Add one hour?`,
    buttons: [Dialog.cancelButton(), Dialog.okButton({ label: 'Add 1 hour' })]
  });
  if (!choice.button.accept) {
    return;
  }
  try {
    await request('academy/api/walltime/extend', { method: 'POST', body: JSON.stringify({ hours: 1 }) });
    await refresh();
    Notification.success('One more hour was added to your session.', { autoClose: 8000 });
  } catch (err) {
    const message = err instanceof APIError ? err.message : String(err);
    Notification.error(`No more time: ${message}`, { autoClose: false });
  }
}

/** Start the countdown: ask the server now and every `poll_seconds`, tick every second. */
export function startClock(app: JupyterFrontEnd, clock: WalltimeClock, onSession: (s: ISession) => void): () => Promise<void> {
  let poll = 30;
  const refresh = async () => {
    const session = await request<ISession>('academy/api/session');
    poll = session.poll_seconds;
    clock.update(session);
    onSession(session);
  };
  every(
    () => poll,
    async () => {
      try {
        await refresh();
      } catch (err) {
        // 404: a server without academy.lab; stop asking. Anything else: try again later.
        return !(err instanceof APIError && err.status === 404);
      }
      return true;
    }
  );
  window.setInterval(() => clock.tick(), 1000);
  return refresh;
}
