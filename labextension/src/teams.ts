/**
 * Team folders in the status bar: "Team ml-team 1.2 GiB" per team folder of the learner
 * (`GET academy/api/teams`, which measures at most every few minutes whatever we ask); a folder
 * past the site's warning size shows as a warning. Hidden without team folders (404 or none).
 */
import { IStatusBar } from '@jupyterlab/statusbar';
import { Widget } from '@lumino/widgets';

import { APIError, request, every } from './api';

export interface ITeam {
  group: string;
  link: string;
  bytes: number;
  files: number;
  complete: boolean;
  human: string;
  warn: boolean;
  warn_bytes: number;
}

export function describeTeams(teams: ITeam[]): string {
  return teams.map(t => `Team ${t.group} ${t.human}`).join(' · ');
}

export function addTeams(statusBar: IStatusBar | null): void {
  if (!statusBar) {
    return;
  }
  const item = new Widget();
  item.addClass('academy-teams');
  item.hide();
  statusBar.registerStatusItem('academy-lab:teams', { item, align: 'left', rank: 1 });
  let refresh = 300;
  every(
    () => Math.min(refresh, 600),
    async () => {
      try {
        const r = await request<{ teams: ITeam[]; refresh_seconds: number }>('academy/api/teams');
        refresh = Math.max(30, r.refresh_seconds || 300);
        if (!r.teams.length) {
          item.hide();
          return true;
        }
        item.node.textContent = describeTeams(r.teams);
        item.node.title = r.teams
          .map(t => `~/${t.link}: ${t.human} in ${t.files} files${t.warn ? ' (over the site’s warning size: clean up or ask your admin)' : ''}`)
          .join('\n');
        item.toggleClass('academy-teams-warn', r.teams.some(t => t.warn));
        item.show();
        return true;
      } catch (err) {
        item.hide();
        return !(err instanceof APIError && err.status === 404);
      }
    }
  );
}
