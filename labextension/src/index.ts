/**
 * AI Factory Academy in JupyterLab: one prebuilt extension shipped in the `academy` Python package.
 */
import { JupyterFrontEnd, JupyterFrontEndPlugin } from '@jupyterlab/application';
import { ICommandPalette } from '@jupyterlab/apputils';
import { ILauncher } from '@jupyterlab/launcher';
import { IMainMenu } from '@jupyterlab/mainmenu';
import { IStateDB } from '@jupyterlab/statedb';
import { IStatusBar } from '@jupyterlab/statusbar';

import { addAnnouncements } from './announcements';
import { addDueDates } from './duedates';
import { addBudget } from './budget';
import { ISession } from './api';
import { addHelp } from './help';
import { addLanding, openWelcomeOnce } from './landing';
import { addEnvironments, addNotices, addResources } from './labtools';
import { addProjects } from './projects';
import { addTeams } from './teams';
import { EXTEND_COMMAND, WalltimeClock, askForMoreTime, startClock } from './walltime';

const plugin: JupyterFrontEndPlugin<void> = {
  id: 'academy-lab:plugin',
  description: 'Walltime, resources, notices, environments and the Academy landing.',
  autoStart: true,
  optional: [IStatusBar, ILauncher, IMainMenu, IStateDB, ICommandPalette],
  activate: (
    app: JupyterFrontEnd,
    statusBar: IStatusBar | null,
    launcher: ILauncher | null,
    mainMenu: IMainMenu | null,
    state: IStateDB | null,
    palette: ICommandPalette | null
  ) => {
    let latest: ISession | null = null;
    let welcomed = false;
    const clock = new WalltimeClock(app, statusBar);
    addLanding(app, () => latest, launcher, mainMenu);
    const refresh = startClock(app, clock, session => {
      latest = session;
      if (!welcomed) {
        welcomed = true;
        void app.restored.then(() => openWelcomeOnce(app, state, session));
      }
    });
    app.commands.addCommand(EXTEND_COMMAND, {
      label: 'More time…',
      caption: 'Ask for more walltime, within your profile’s maximum',
      execute: () => askForMoreTime(clock, refresh)
    });
    addResources(statusBar);
    addTeams(statusBar); // issue #13: team folders' disk use
    addBudget(statusBar); // issue #13: the team's GPU-hours left
    addNotices();
    addEnvironments(app, launcher);
    addProjects(app, launcher);
    addAnnouncements();
    addDueDates(); // issue #11: due dates in nbgrader's Assignments panel
    addHelp(app, palette, mainMenu);
  }
};

export default plugin;
