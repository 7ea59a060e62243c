"""Every Qt import of the plugin, in one place: Krita 5 ships PyQt5, Krita 6 PyQt6."""

try:
    from PyQt6 import QtCore, QtGui, QtWidgets, sip

    QT6 = True
except ImportError:
    from PyQt5 import QtCore, QtGui, QtWidgets, sip

    QT6 = False

QByteArray, QObject, QSize, Qt, QTimer = QtCore.QByteArray, QtCore.QObject, QtCore.QSize, QtCore.Qt, QtCore.QTimer
pyqtSignal = QtCore.pyqtSignal
QIcon, QImage, QPainter, QPixmap = QtGui.QIcon, QtGui.QImage, QtGui.QPainter, QtGui.QPixmap
W = QtWidgets
QAbstractItemView, QCheckBox, QComboBox, QDialog = W.QAbstractItemView, W.QCheckBox, W.QComboBox, W.QDialog
QDialogButtonBox, QDoubleSpinBox, QFormLayout, QGridLayout = (
    W.QDialogButtonBox,
    W.QDoubleSpinBox,
    W.QFormLayout,
    W.QGridLayout,
)
QHBoxLayout, QLabel, QLineEdit, QListWidget = W.QHBoxLayout, W.QLabel, W.QLineEdit, W.QListWidget
QFileDialog, QInputDialog, QProgressBar, QSplitter = W.QFileDialog, W.QInputDialog, W.QProgressBar, W.QSplitter
QDockWidget, QGroupBox, QSlider = W.QDockWidget, W.QGroupBox, W.QSlider
QListWidgetItem, QPushButton, QSpinBox, QVBoxLayout, QWidget = (
    W.QListWidgetItem,
    W.QPushButton,
    W.QSpinBox,
    W.QVBoxLayout,
    W.QWidget,
)

# Enums moved into scoped classes in Qt 6; these names work with both.
ARGB32 = QImage.Format.Format_ARGB32 if QT6 else QImage.Format_ARGB32  # B, G, R, A bytes: Krita's 8-bit layout
ALPHA8 = QImage.Format.Format_Alpha8 if QT6 else QImage.Format_Alpha8
_MODES = QPainter.CompositionMode if QT6 else QPainter
DESTINATION_IN = _MODES.CompositionMode_DestinationIn  # keeps the destination, alpha times the source's
KEEP_ASPECT = Qt.AspectRatioMode.KeepAspectRatio if QT6 else Qt.KeepAspectRatio
SMOOTH = Qt.TransformationMode.SmoothTransformation if QT6 else Qt.SmoothTransformation
VERTICAL = Qt.Orientation.Vertical if QT6 else Qt.Vertical
HORIZONTAL = Qt.Orientation.Horizontal if QT6 else Qt.Horizontal
ADJUST = QListWidget.ResizeMode.Adjust if QT6 else QListWidget.Adjust
ICON_MODE = QListWidget.ViewMode.IconMode if QT6 else QListWidget.IconMode
EXTENDED_SELECTION = QAbstractItemView.SelectionMode.ExtendedSelection if QT6 else QAbstractItemView.ExtendedSelection
USER_ROLE = Qt.ItemDataRole.UserRole if QT6 else Qt.UserRole
SELECTABLE = Qt.TextInteractionFlag.TextSelectableByMouse if QT6 else Qt.TextSelectableByMouse
PASSWORD = QLineEdit.EchoMode.Password if QT6 else QLineEdit.Password
_BUTTONS = QDialogButtonBox.StandardButton if QT6 else QDialogButtonBox
OK_CANCEL = _BUTTONS.Ok | _BUTTONS.Cancel


def is_deleted(obj: QObject) -> bool:
    """Whether Qt has deleted the C++ object behind a Python wrapper."""
    return sip.isdeleted(obj)


def run_dialog(dialog: QDialog) -> bool:
    return bool(dialog.exec() if QT6 else dialog.exec_())


__all__ = [
    "ADJUST", "ALPHA8", "ARGB32", "DESTINATION_IN", "QPainter", "KEEP_ASPECT", "SMOOTH", "VERTICAL", "QSplitter",
    "HORIZONTAL", "QDockWidget", "QGroupBox", "QSlider",
    "EXTENDED_SELECTION", "ICON_MODE", "OK_CANCEL", "PASSWORD", "QT6", "SELECTABLE", "USER_ROLE", "QAbstractItemView",
    "QByteArray", "QCheckBox", "QComboBox", "QDialog", "QDialogButtonBox", "QDoubleSpinBox", "QFileDialog", "QFormLayout",
    "QGridLayout", "QHBoxLayout", "QIcon", "QImage", "QInputDialog", "QLabel", "QLineEdit", "QListWidget", "QListWidgetItem",
    "QObject", "QPixmap", "QProgressBar", "QPushButton", "QSize", "QSpinBox", "QTimer", "QVBoxLayout", "QWidget", "Qt",
    "pyqtSignal", "run_dialog", "is_deleted",
]  # fmt: skip
