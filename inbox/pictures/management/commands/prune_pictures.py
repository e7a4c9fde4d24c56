from __future__ import annotations

from django.conf import settings
from django.core.management.base import BaseCommand
from django.template.defaultfilters import filesizeformat

from inbox.pictures import services
from inbox.progress import progress_bar


class Command(BaseCommand):
    help = (
        "Delete stored pictures (inbox.pictures) nobody was shown for PICTURES_RETENTION_DAYS, "
        "and those no letter uses any more, rows and files, in batches; their letters then say "
        "the picture has expired. Also deletes files under MEDIA_ROOT/pictures that no row "
        "names. Beat runs the same once a day. Safe while workers store pictures."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--dry-run", action="store_true", help="Count what would be deleted; delete nothing."
        )

    def handle(self, *args, dry_run: bool = False, **options) -> None:
        days = settings.PICTURES_RETENTION_DAYS
        kept = f"kept {days} day(s) after last shown" if days > 0 else "kept for ever"
        if dry_run:
            result = services.prune_pictures(dry_run=True)
            verb = "Would delete"
        else:
            total = services.prunable().count()
            with progress_bar(self.stdout, total=total, unit="pictures") as bar:
                result = services.prune_pictures(progress=bar.update)
            verb = "Deleted"
        self.stdout.write(
            f"{verb} {result.pictures} picture(s) ({filesizeformat(result.bytes)}) shown in "
            f"{result.letters} letter(s), and {result.stray_files} stray file(s); pictures are "
            f"{kept}."
        )
