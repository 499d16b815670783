/**
 * The Academy landing: 00_welcome on first start, an Academy section in the Launcher and the
 * centre's help (web page, e-mail, "Ask a trainer" where configured) in the Help menu.
 */
import { JupyterFrontEnd } from '@jupyterlab/application';
import { DocumentWidget } from '@jupyterlab/docregistry';
import { ILauncher } from '@jupyterlab/launcher';
import { IMainMenu } from '@jupyterlab/mainmenu';
import { IStateDB } from '@jupyterlab/statedb';
import { folderIcon, infoIcon, listIcon, notebookIcon } from '@jupyterlab/ui-components';

import { ISession } from './api';

const STATE_KEY = 'academy-lab:landing';
export const CATEGORY = 'AI Factory Academy';

export const COMMANDS = {
  welcome: 'academy:open-welcome',
  curriculum: 'academy:open-curriculum',
  assignments: 'academy:open-assignments',
  help: 'academy:help',
  email: 'academy:email-help',
  trainer: 'academy:ask-trainer'
};

/** Register the commands, Launcher cards and Help menu entries; `session()` is the latest answer. */
export function addLanding(
  app: JupyterFrontEnd,
  session: () => ISession | null,
  launcher: ILauncher | null,
  mainMenu: IMainMenu | null
): void {
  const { commands } = app;
  const help = () => session()?.help;
  commands.addCommand(COMMANDS.welcome, {
    label: 'Welcome to the Academy',
    icon: notebookIcon,
    caption: 'Open the welcome notebook',
    execute: () => {
      const path = session()?.welcome;
      return path ? commands.execute('docmanager:open', { path }) : undefined;
    }
  });
  commands.addCommand(COMMANDS.curriculum, {
    label: 'Curriculum',
    icon: folderIcon,
    caption: 'The course notebooks, in order',
    execute: () => commands.execute('filebrowser:go-to-path', { path: session()?.curriculum ?? '' })
  });
  commands.addCommand(COMMANDS.assignments, {
    label: 'Course assignments',
    icon: listIcon,
    caption: 'Fetched assignments are folders in your home',
    execute: () => commands.execute('filebrowser:go-to-path', { path: '/' })
  });
  commands.addCommand(COMMANDS.help, {
    label: 'AI Factory help',
    icon: infoIcon,
    caption: 'The centre’s help pages',
    isVisible: () => !!help()?.url,
    isEnabled: () => !!help()?.url,
    execute: () => void window.open(help()!.url, '_blank', 'noopener')
  });
  commands.addCommand(COMMANDS.email, {
    label: () => `E-mail the helpdesk${help()?.email ? ` (${help()!.email})` : ''}`,
    isVisible: () => !!help()?.email,
    isEnabled: () => !!help()?.email,
    execute: () => void window.open(`mailto:${encodeURIComponent(help()!.email)}`, '_self')
  });
  commands.addCommand(COMMANDS.trainer, {
    label: 'Ask a trainer',
    caption: 'Where a workshop provides it: ask your trainer for help',
    isVisible: () => !!help()?.ask_trainer_url,
    isEnabled: () => !!help()?.ask_trainer_url,
    execute: () => void window.open(help()!.ask_trainer_url, '_blank', 'noopener')
  });
  if (launcher) {
    let rank = 0;
    for (const command of [COMMANDS.welcome, COMMANDS.curriculum, COMMANDS.assignments, COMMANDS.help]) {
      launcher.add({ command, category: CATEGORY, rank: rank++ });
    }
  }
  if (mainMenu) {
    mainMenu.helpMenu.addGroup(
      [{ command: COMMANDS.help }, { command: COMMANDS.email }, { command: COMMANDS.trainer }],
      -10
    );
  }
}

/** On the very first start (per browser profile and server), open the welcome notebook. */
export async function openWelcomeOnce(app: JupyterFrontEnd, state: IStateDB | null, session: ISession): Promise<void> {
  if (!session.welcome) {
    return;
  }
  if (state) {
    const seen = await state.fetch(STATE_KEY);
    if (seen) {
      return;
    }
    await state.save(STATE_KEY, { welcomed: session.welcome });
  }
  // A learner who came with a link to a document keeps it in front; the welcome waits in a tab.
  const busy = Array.from(app.shell.widgets('main')).some(w => w instanceof DocumentWidget);
  await app.commands.execute('docmanager:open', { path: session.welcome, options: { activate: !busy } });
}
