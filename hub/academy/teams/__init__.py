"""Team folders: a shared, group-owned folder per hub group, linked into each member's home (see README "Team folders").

``folders`` (names, the folder, Unix groups and membership, disk use; root's side), ``links`` (the
``~/team-<group>`` links, made as the learner), ``hook`` (the spawners' pre-spawn step and the
config updater) and ``cli`` (``academy teams``).
"""
