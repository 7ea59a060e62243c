"""Every Qt import of the plugin, in one place: Krita 5 ships PyQt5, Krita 6 PyQt6."""

try:
    from PyQt6.QtCore import QByteArray, QObject, QSize, Qt, QTimer, pyqtSignal
    from PyQt6.QtGui import QIcon, QImage, QPixmap
    from PyQt6.QtWidgets import (
        QAbstractItemView,
        QCheckBox,
        QComboBox,
        QDialog,
        QDialogButtonBox,
        QDoubleSpinBox,
        QFormLayout,
        QGridLayout,
        QHBoxLayout,
        QLabel,
        QLineEdit,
        QListWidget,
        QListWidgetItem,
        QPushButton,
        QSpinBox,
        QVBoxLayout,
        QWidget,
    )

    RGBA8888 = QImage.Format.Format_RGBA8888
    ICON_MODE = QListWidget.ViewMode.IconMode
    EXTENDED_SELECTION = QAbstractItemView.SelectionMode.ExtendedSelection
    USER_ROLE = Qt.ItemDataRole.UserRole
    PASSWORD = QLineEdit.EchoMode.Password
    OK_CANCEL = QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel

    def run_dialog(dialog: QDialog) -> bool:
        return bool(dialog.exec())

except ImportError:
    from PyQt5.QtCore import QByteArray, QObject, QSize, Qt, QTimer, pyqtSignal
    from PyQt5.QtGui import QIcon, QImage, QPixmap
    from PyQt5.QtWidgets import (
        QAbstractItemView,
        QCheckBox,
        QComboBox,
        QDialog,
        QDialogButtonBox,
        QDoubleSpinBox,
        QFormLayout,
        QGridLayout,
        QHBoxLayout,
        QLabel,
        QLineEdit,
        QListWidget,
        QListWidgetItem,
        QPushButton,
        QSpinBox,
        QVBoxLayout,
        QWidget,
    )

    RGBA8888 = QImage.Format_RGBA8888
    ICON_MODE = QListWidget.IconMode
    EXTENDED_SELECTION = QAbstractItemView.ExtendedSelection
    USER_ROLE = Qt.UserRole
    PASSWORD = QLineEdit.Password
    OK_CANCEL = QDialogButtonBox.Ok | QDialogButtonBox.Cancel

    def run_dialog(dialog: QDialog) -> bool:
        return bool(dialog.exec_())


__all__ = [
    "EXTENDED_SELECTION", "ICON_MODE", "OK_CANCEL", "PASSWORD", "run_dialog", "RGBA8888", "USER_ROLE", "QAbstractItemView", "QByteArray",
    "QCheckBox", "QComboBox", "QDialog", "QDialogButtonBox", "QDoubleSpinBox", "QFormLayout", "QGridLayout",
    "QHBoxLayout", "QIcon", "QImage", "QLabel", "QLineEdit", "QListWidget", "QListWidgetItem", "QObject",
    "QPixmap", "QPushButton", "QSize", "QSpinBox", "QTimer", "QVBoxLayout", "QWidget", "Qt", "pyqtSignal",
]  # fmt: skip
