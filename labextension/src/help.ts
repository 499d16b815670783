/**
 * "Ask a trainer" in the top bar and "What the trainers see about me": the front end of the
 * `academy.labtools.learner` server extension (`academy/api/help`). The server decides which group
 * a share goes to (the workshop's trainer group, from the Academy service); nothing here names one.
 * The top bar item hides itself where the learner is in no running workshop.
 */
import { JupyterFrontEnd } from '@jupyterlab/application';
import { Dialog, ICommandPalette, MainAreaWidget, Notification, showDialog } from '@jupyterlab/apputils';
import { IMainMenu } from '@jupyterlab/mainmenu';
import { Widget } from '@lumino/widgets';

import { APIError, every, request } from './api';

export interface IHelpState {
  available: boolean;
  reason: string;
  trainer_access: 'consent' | 'always';
  trainer_group: string;
  hand: boolean;
  shared: boolean;
  share_path: string;
}

export const HELP_COMMANDS = {
  ask: 'academy:ask-a-trainer',
  end: 'academy:end-trainer-access',
  mine: 'academy:what-trainers-see'
};

export const CONSENT_TEXT =
  'A trainer of your workshop will be able to open your JupyterLab and run code in it until you end it.';

/** The consent dialog's body: the warning, and an optional note for the trainer. */
class AskBody extends Widget {
  private note: HTMLTextAreaElement;

  constructor(always: boolean) {
    super();
    this.addClass('academy-ask-body');
    const text = document.createElement('p');
    text.textContent = always
      ? 'Your site’s terms of use let the trainers of your workshop open your JupyterLab at any time. Raise your hand?'
      : CONSENT_TEXT;
    const label = document.createElement('label');
    label.textContent = 'What are you stuck on? (optional)';
    this.note = document.createElement('textarea');
    this.note.maxLength = 1000;
    this.note.rows = 3;
    label.appendChild(this.note);
    this.node.append(text, label);
  }

  getValue(): string {
    return this.note.value;
  }
}

/** The top-bar item: a button, or what is going on with an action beside it. */
class HelpBar extends Widget {
  state: IHelpState | null = null;

  constructor(private app: JupyterFrontEnd) {
    super();
    this.addClass('academy-help-bar');
    this.hide();
  }

  render(state: IHelpState | null): void {
    this.state = state;
    this.node.textContent = '';
    if (!state || !state.available) {
      this.hide();
      return;
    }
    const button = (label: string, command: string) => {
      const b = document.createElement('button');
      b.className = 'jp-Button jp-mod-styled academy-help-action';
      b.textContent = label;
      b.onclick = () => void this.app.commands.execute(command);
      return b;
    };
    const status = document.createElement('span');
    status.className = 'academy-help-status';
    if (state.shared) {
      status.textContent = state.trainer_access === 'always' ? 'Trainers have access (site policy)' : 'A trainer has access';
      this.node.appendChild(status);
      if (state.trainer_access !== 'always') {
        this.node.append(' · ', button('End access', HELP_COMMANDS.end));
      } else {
        // The site keeps access on; the hand is still the learner's to raise and lower.
        this.node.append(' · ', state.hand ? button('Lower hand', HELP_COMMANDS.end) : button('Ask a trainer', HELP_COMMANDS.ask));
      }
    } else if (state.hand) {
      status.textContent = 'Hand raised';
      this.node.append(status, ' · ', button('Lower hand', HELP_COMMANDS.end));
    } else {
      this.node.appendChild(button('Ask a trainer', HELP_COMMANDS.ask));
    }
    this.show();
  }
}

function message(err: unknown): string {
  return err instanceof APIError ? err.message : String(err);
}

async function askTrainer(bar: HelpBar): Promise<void> {
  const always = bar.state?.trainer_access === 'always';
  const buttons = always
    ? [Dialog.cancelButton(), Dialog.okButton({ label: 'Raise my hand' })]
    : [
        Dialog.cancelButton(),
        Dialog.createButton({ label: 'Only raise my hand', accept: true, displayType: 'default' }),
        Dialog.okButton({ label: 'Allow access and ask' })
      ];
  const result = await showDialog({ title: 'Ask a trainer', body: new AskBody(always), buttons });
  if (!result.button.accept) {
    return;
  }
  const share = !always && result.button.label === 'Allow access and ask';
  try {
    const state = await request<IHelpState>('academy/api/help', {
      method: 'POST',
      body: JSON.stringify({ share, message: result.value || '' })
    });
    bar.render(state);
    Notification.success(state.shared ? 'A trainer can now open your JupyterLab; your hand is raised.' : 'Your hand is raised.', {
      autoClose: 8000
    });
  } catch (err) {
    Notification.error(`Ask a trainer: ${message(err)}`, { autoClose: false });
  }
}

async function endAccess(bar: HelpBar): Promise<void> {
  try {
    const state = await request<IHelpState>('academy/api/help', { method: 'DELETE' });
    bar.render(state);
    Notification.info(state.shared ? 'Your hand is lowered.' : 'Trainer access has ended; your hand is lowered.', { autoClose: 8000 });
  } catch (err) {
    Notification.error(`End access: ${message(err)}`, { autoClose: false });
  }
}

/** One readable table for a list of records; other values as text. */
function renderValue(value: unknown): HTMLElement {
  if (Array.isArray(value) && value.length && value.every(v => v && typeof v === 'object' && !Array.isArray(v))) {
    const columns = Array.from(new Set(value.flatMap(v => Object.keys(v as object))));
    const table = document.createElement('table');
    table.className = 'academy-mine-table';
    const head = table.createTHead().insertRow();
    columns.forEach(c => (head.insertCell().textContent = c));
    const body = table.createTBody();
    for (const row of value as Record<string, unknown>[]) {
      const tr = body.insertRow();
      columns.forEach(c => {
        const v = row[c];
        tr.insertCell().textContent = v === null || v === undefined ? '' : typeof v === 'object' ? JSON.stringify(v) : String(v);
      });
    }
    return table;
  }
  const pre = document.createElement('span');
  pre.textContent = Array.isArray(value) && !value.length ? '(nothing)' : typeof value === 'object' ? JSON.stringify(value, null, 1) : String(value);
  return pre;
}

async function showMine(app: JupyterFrontEnd): Promise<void> {
  const content = new Widget();
  content.addClass('academy-mine');
  const intro = document.createElement('p');
  intro.textContent =
    'Everything the workshop service holds about you: what your workshop’s trainers see on their dashboard. ' +
    'Your own record of exercises stays in ~/.academy/progress.jsonl.';
  content.node.appendChild(intro);
  try {
    const mine = await request<Record<string, unknown>>('academy/api/help/mine');
    const dl = document.createElement('dl');
    for (const [key, value] of Object.entries(mine)) {
      const dt = document.createElement('dt');
      dt.textContent = key.replace(/_/g, ' ');
      const dd = document.createElement('dd');
      dd.appendChild(renderValue(value));
      dl.append(dt, dd);
    }
    content.node.appendChild(dl);
  } catch (err) {
    const p = document.createElement('p');
    p.textContent = `Nothing to show: ${message(err)}`;
    content.node.appendChild(p);
  }
  const widget = new MainAreaWidget({ content });
  widget.id = `academy-mine-${Date.now()}`;
  widget.title.label = 'What the trainers see about me';
  widget.title.closable = true;
  app.shell.add(widget, 'main');
  app.shell.activateById(widget.id);
}

export function addHelp(app: JupyterFrontEnd, palette: ICommandPalette | null, mainMenu: IMainMenu | null): void {
  const bar = new HelpBar(app);
  bar.id = 'academy-help-bar';
  app.shell.add(bar, 'top', { rank: 900 });
  const available = () => !!bar.state?.available;
  app.commands.addCommand(HELP_COMMANDS.ask, {
    label: 'Ask a trainer…',
    caption: 'Raise your hand on your workshop’s dashboard and, if you agree, let a trainer into this JupyterLab',
    isEnabled: available,
    execute: () => askTrainer(bar)
  });
  app.commands.addCommand(HELP_COMMANDS.end, {
    label: () => (bar.state?.shared && bar.state.trainer_access !== 'always' ? 'End trainer access' : 'Lower my hand'),
    isEnabled: () => !!(bar.state?.shared || bar.state?.hand),
    execute: () => endAccess(bar)
  });
  app.commands.addCommand(HELP_COMMANDS.mine, {
    label: 'What the trainers see about me',
    caption: 'What the workshop service records about you',
    execute: () => showMine(app)
  });
  for (const command of Object.values(HELP_COMMANDS)) {
    palette?.addItem({ command, category: 'AI Factory Academy' });
  }
  mainMenu?.helpMenu.addGroup([{ command: HELP_COMMANDS.ask }, { command: HELP_COMMANDS.mine }], -9);
  every(
    () => 15,
    async () => {
      try {
        bar.render(await request<IHelpState>('academy/api/help'));
        return true;
      } catch (err) {
        bar.render(null);
        return !(err instanceof APIError && err.status === 404);
      }
    }
  );
}
